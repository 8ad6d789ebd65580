# The numpy reference forward pass (llama_np.py) and the tests that hold origami's forward pass to
# it. Included from tests/model/CMakeLists.txt. Models are generated at test time into
# ${CMAKE_BINARY_DIR}/test-models/ by fixture tests (never committed); each forward_<model>_<type>
# test runs check_forward.py, which runs `origami run --prompt-ids ... --logits-out` and compares.

set(ORIGAMI_REF_DIR ${CMAKE_CURRENT_LIST_DIR})
set(ORIGAMI_TEST_MODELS ${CMAKE_BINARY_DIR}/test-models)

# Writes random-block quantized copies of a synthetic F32 model (K-quants, Q4_1, Q5_x, ...).
add_executable(make_kquant_model ${ORIGAMI_REF_DIR}/make_kquant_model.cpp)
target_link_libraries(make_kquant_model PRIVATE origami_gguf origami_tensor origami_util)

if(NOT Python3_EXECUTABLE)
  message(WARNING "tests/model/reference: no Python 3 interpreter; the forward-pass oracle tests are not registered")
  return()
endif()
execute_process(COMMAND ${Python3_EXECUTABLE} -c "import numpy" RESULT_VARIABLE _origami_numpy_rc
                OUTPUT_QUIET ERROR_QUIET)
if(NOT _origami_numpy_rc EQUAL 0)
  message(WARNING "tests/model/reference: ${Python3_EXECUTABLE} has no numpy (configure with "
                  "-DPython3_EXECUTABLE=/usr/bin/python3); the forward-pass oracle tests are not registered")
  return()
endif()

set(_py ${Python3_EXECUTABLE})
set(_synth ${ORIGAMI_SHARED_ABS}/tools/make_synthetic_gguf.py)
set(_check ${ORIGAMI_REF_DIR}/check_forward.py)
set(_models ${ORIGAMI_SHARED_ABS}/models)

# The oracle first: stories260K.gguf against llama2.c's logits (1e-4) and 64 greedy ids.
add_test(NAME reference_selftest
         COMMAND ${_py} ${ORIGAMI_REF_DIR}/llama_np.py selftest --shared ${ORIGAMI_SHARED_ABS})
set_tests_properties(reference_selftest PROPERTIES FIXTURES_SETUP oracle TIMEOUT 120)

add_test(NAME reference_make_model_dir COMMAND ${CMAKE_COMMAND} -E make_directory ${ORIGAMI_TEST_MODELS})
set_tests_properties(reference_make_model_dir PROPERTIES FIXTURES_SETUP model_dir)

# forward_test(NAME model.gguf [FIXTURE f] [ARGS ...]): compare origami with the oracle on a model.
function(origami_forward_test name model)
  cmake_parse_arguments(F "" "FIXTURE" "ARGS" ${ARGN})
  add_test(NAME forward_${name}
           COMMAND ${_py} ${_check} --origami $<TARGET_FILE:origami> -m ${model} ${F_ARGS}
                   --workdir ${CMAKE_BINARY_DIR})
  set_tests_properties(forward_${name} PROPERTIES FIXTURES_REQUIRED "oracle;${F_FIXTURE}" TIMEOUT 300
                       LABELS "forward;reference")
endfunction()

# Real tiny models, read in place.
origami_forward_test(stories260K_F32 ${_models}/stories260K.gguf
                     ARGS --prompt-ids 1 --prompt-ids 1,403,407,261,378)
origami_forward_test(llama2tiny_F16 ${_models}/llama-2-tiny-random.gguf)

# Synthetic models from the shared tool: 2 layers, n_embd 64, 4 query heads on 2 KV heads, Llama-2
# vocabulary. Weight std 0.1 (not the tool's 0.02) so that attention is sharp enough for a rope or
# GQA mistake to move the logits by ~100% of their scale instead of ~1%.
foreach(t F32 F16 BF16 Q8_0 Q4_0)
  set(_f ${ORIGAMI_TEST_MODELS}/synthetic-${t}.gguf)
  add_test(NAME reference_make_synthetic_${t}
           COMMAND ${_py} ${_synth} -q -o ${_f} --preset tiny --n-layer 2 --n-embd 64 --n-ff 128
                   --n-head 4 --n-head-kv 2 --vocab-name llama-spm --type ${t} --std 0.1 --seed 7)
  set_tests_properties(reference_make_synthetic_${t} PROPERTIES FIXTURES_SETUP model_synthetic_${t}
                       FIXTURES_REQUIRED model_dir TIMEOUT 120)
  origami_forward_test(synthetic_${t} ${_f} FIXTURE model_synthetic_${t})
endforeach()

# Random-block models from make_kquant_model: an F32 base of n_embd 256 (a multiple of the 256
# K-quant super-block), n_ff 512, then one file per type with weight std 0.05, plus a Q4_K variant
# with a Llama-3.1 rope_freqs.weight. Each run also writes origami's dequantization of the layer
# matrices, which check_dequant.py compares with the numpy dequantizers bit for bit.
set(_kbase ${ORIGAMI_TEST_MODELS}/kbase-F32.gguf)
add_test(NAME reference_make_kbase
         COMMAND ${_py} ${_synth} -q -o ${_kbase} --preset tiny --n-layer 2 --n-embd 256 --n-ff 512
                 --n-head 4 --n-head-kv 2 --vocab-name llama-spm --type F32 --seed 11)
set_tests_properties(reference_make_kbase PROPERTIES FIXTURES_SETUP model_kbase
                     FIXTURES_REQUIRED model_dir TIMEOUT 120)
foreach(t Q2_K Q3_K Q4_K Q5_K Q6_K Q4_1 Q5_0 Q5_1)
  set(_f ${ORIGAMI_TEST_MODELS}/random-${t}.gguf)
  set(_d ${ORIGAMI_TEST_MODELS}/random-${t}-dequantized.gguf)
  add_test(NAME reference_make_random_${t}
           COMMAND make_kquant_model ${_kbase} ${_f} ${t} --std 0.05 --seed 3 --dump-f32 ${_d})
  set_tests_properties(reference_make_random_${t} PROPERTIES FIXTURES_SETUP model_random_${t}
                       FIXTURES_REQUIRED model_kbase TIMEOUT 120)
  add_test(NAME dequant_numpy_vs_origami_${t}
           COMMAND ${_py} ${ORIGAMI_REF_DIR}/check_dequant.py ${_f} ${_d})
  set_tests_properties(dequant_numpy_vs_origami_${t} PROPERTIES FIXTURES_REQUIRED model_random_${t}
                       TIMEOUT 120 LABELS reference)
  origami_forward_test(random_${t} ${_f} FIXTURE model_random_${t})
endforeach()

set(_f ${ORIGAMI_TEST_MODELS}/random-Q4_K-rope-freqs.gguf)
add_test(NAME reference_make_random_Q4_K_rope_freqs
         COMMAND make_kquant_model ${_kbase} ${_f} Q4_K --std 0.05 --seed 5 --rope-freqs)
set_tests_properties(reference_make_random_Q4_K_rope_freqs PROPERTIES
                     FIXTURES_SETUP model_random_Q4_K_rope_freqs FIXTURES_REQUIRED model_kbase TIMEOUT 120)
origami_forward_test(random_Q4_K_rope_freqs ${_f} FIXTURE model_random_Q4_K_rope_freqs
                     ARGS --prompt-ids 1 --prompt-ids 1,450,4996,17354,1701,29916,432,975,278,17366,11203,29889,13,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20)

# The same factors on a float model, where the tolerance is 4000x tighter than on Q4_K.
set(_f ${ORIGAMI_TEST_MODELS}/synthetic-F32-rope-freqs.gguf)
add_test(NAME reference_make_synthetic_F32_rope_freqs
         COMMAND make_kquant_model ${ORIGAMI_TEST_MODELS}/synthetic-F32.gguf ${_f} F32 --rope-freqs)
set_tests_properties(reference_make_synthetic_F32_rope_freqs PROPERTIES
                     FIXTURES_SETUP model_synthetic_F32_rope_freqs FIXTURES_REQUIRED model_synthetic_F32 TIMEOUT 120)
origami_forward_test(synthetic_F32_rope_freqs ${_f} FIXTURE model_synthetic_F32_rope_freqs
                     ARGS --prompt-ids 1 --prompt-ids 1,450,4996,17354,1701,29916,432,975,278,17366,11203,29889,13,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20)

# The checker itself: it must pass a stand-in built on the reference and catch an injected bug.
add_test(NAME forward_checker_accepts_reference
         COMMAND ${_py} ${_check} --origami ${ORIGAMI_REF_DIR}/fake_origami.py
                 -m ${ORIGAMI_TEST_MODELS}/synthetic-F32.gguf --workdir ${CMAKE_BINARY_DIR})
set_tests_properties(forward_checker_accepts_reference PROPERTIES
                     FIXTURES_REQUIRED "oracle;model_synthetic_F32" TIMEOUT 300 LABELS reference)
foreach(bug rope_neox gqa_modulo)
  add_test(NAME forward_checker_catches_${bug}
           COMMAND ${CMAKE_COMMAND} -E env FAKE_ORIGAMI_BUG=${bug}
                   ${_py} ${_check} --origami ${ORIGAMI_REF_DIR}/fake_origami.py
                   -m ${ORIGAMI_TEST_MODELS}/synthetic-Q4_0.gguf --workdir ${CMAKE_BINARY_DIR})
  # Exit status ignored: it must report a logit mismatch (not crash).
  set_tests_properties(forward_checker_catches_${bug} PROPERTIES
                       FIXTURES_REQUIRED "oracle;model_synthetic_Q4_0" TIMEOUT 300 LABELS reference
                       PASS_REGULAR_EXPRESSION "FAIL [^\n]*: logit [0-9]+: origami")
endforeach()
