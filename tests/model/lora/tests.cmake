# LoRA adapters at inference (`--lora FILE[:SCALE]`) against the float64 family reference with
# merged weights, and the errors of malformed adapters; included from tests/model/CMakeLists.txt
# after families/tests.cmake, whose `origami synth` fixtures give the tiny F32 base models.
# Adapters are written at test time by make_lora_gguf.py (numpy, its own GGUF writer).
if(NOT Python3_EXECUTABLE)
  return()
endif()
set(_lora_dir ${CMAKE_CURRENT_LIST_DIR})
foreach(name llama_F32 qwen3_F32 qwen3moe_F32)
  add_test(NAME lora_reference_${name}
           COMMAND ${Python3_EXECUTABLE} ${_lora_dir}/check_lora.py --origami $<TARGET_FILE:origami>
                   -m ${CMAKE_BINARY_DIR}/test-models/families/${name}.gguf reference)
  set_tests_properties(lora_reference_${name} PROPERTIES FIXTURES_REQUIRED family_${name} TIMEOUT 600
                       LABELS "forward;reference")
endforeach()
add_test(NAME lora_errors
         COMMAND ${Python3_EXECUTABLE} ${_lora_dir}/check_lora.py --origami $<TARGET_FILE:origami>
                 -m ${CMAKE_BINARY_DIR}/test-models/families/llama_F32.gguf
                 --moe-model ${CMAKE_BINARY_DIR}/test-models/families/qwen3moe_F32.gguf errors)
set_tests_properties(lora_errors PROPERTIES FIXTURES_REQUIRED "family_llama_F32;family_qwen3moe_F32" TIMEOUT 300)
# A committed adapter for stories260K (a fixed input: make_lora_gguf.py --rank 4 --type F16
# --alpha 8 --seed 5): the reference at scales 1 and 0.5, and serve with it given at start
# (4 concurrent greedy completions equal `run --lora`).
set(_stories ${ORIGAMI_SHARED_ABS}/models/stories260K.gguf)
set(_committed ${_lora_dir}/stories260K-lora-r4-f16.gguf)
add_test(NAME lora_reference_stories260K_committed
         COMMAND ${Python3_EXECUTABLE} ${_lora_dir}/check_lora.py --origami $<TARGET_FILE:origami> -m ${_stories}
                 --adapter ${_committed} reference)
set_tests_properties(lora_reference_stories260K_committed PROPERTIES TIMEOUT 300 LABELS "forward;reference")
add_test(NAME lora_serve
         COMMAND ${Python3_EXECUTABLE} ${_lora_dir}/check_lora.py --origami $<TARGET_FILE:origami> -m ${_stories}
                 --adapter ${_committed} serve)
set_tests_properties(lora_serve PROPERTIES TIMEOUT 300)
