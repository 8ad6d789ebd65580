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
                 -m ${CMAKE_BINARY_DIR}/test-models/families/llama_F32.gguf errors)
set_tests_properties(lora_errors PROPERTIES FIXTURES_REQUIRED family_llama_F32 TIMEOUT 300)
