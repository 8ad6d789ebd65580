# Family references (families_np.py) vs origami on tiny synthetic models written by
# `origami synth`; included from tests/model/CMakeLists.txt.
set(_fam_dir ${CMAKE_CURRENT_LIST_DIR})
# Routing, expert traffic per token and MXFP4 conversions (C++ unit tests).
add_executable(origami_family_test ${_fam_dir}/moe_test.cpp ${_fam_dir}/deepseek2_test.cpp)
target_link_libraries(origami_family_test PRIVATE origami_runtime origami_model origami_convert GTest::gtest
                                                  GTest::gtest_main)
target_include_directories(origami_family_test PRIVATE ${CMAKE_SOURCE_DIR}/src)
add_test(NAME family_moe_unit COMMAND origami_family_test --gtest_filter=-Route.Sigmoid*:Route.Grouped*:Presets/Deepseek2*)
# deepseek2: routing, and the paged KV cache with prefix reuse (decoder and engine).
add_test(NAME family_deepseek2_unit COMMAND origami_family_test --gtest_filter=Route.Sigmoid*:Route.Grouped*:Presets/Deepseek2*)
set_tests_properties(family_deepseek2_unit PROPERTIES TIMEOUT 300)
if(NOT Python3_EXECUTABLE)
  return()
endif()
set(_fam_models ${CMAKE_BINARY_DIR}/test-models/families)
add_test(NAME family_make_dir COMMAND ${CMAKE_COMMAND} -E make_directory ${_fam_models})
set_tests_properties(family_make_dir PROPERTIES FIXTURES_SETUP family_dir)
# family_test(NAME ARCH TYPE [PRESET]): synth a tiny model, then compare logits and 32 greedy ids.
function(origami_family_test name arch type)
  set(_preset tiny)
  if(ARGC GREATER 3)
    set(_preset ${ARGV3})
  endif()
  set(_f ${_fam_models}/${name}.gguf)
  add_test(NAME family_synth_${name}
           COMMAND $<TARGET_FILE:origami> synth --arch ${arch} --preset ${_preset} --type ${type} --seed 7 -o ${_f})
  set_tests_properties(family_synth_${name} PROPERTIES FIXTURES_SETUP family_${name} FIXTURES_REQUIRED family_dir
                       TIMEOUT 120)
  add_test(NAME forward_family_${name}
           COMMAND ${Python3_EXECUTABLE} ${_fam_dir}/check_family.py --origami $<TARGET_FILE:origami> -m ${_f}
                   --prompt-ids 1 --prompt-ids 1,72,101,108,108,111,44,32,119,111,114,108,100)
  set_tests_properties(forward_family_${name} PROPERTIES FIXTURES_REQUIRED family_${name} TIMEOUT 300
                       LABELS "forward;reference")
endfunction()
origami_family_test(llama_F32 llama F32)
origami_family_test(qwen2_F32 qwen2 F32)
origami_family_test(qwen3_F32 qwen3 F32)
origami_family_test(gemma3_F32 gemma3 F32)
origami_family_test(qwen3moe_F32 qwen3moe F32)
origami_family_test(mixtral_F32 mixtral F32)
origami_family_test(gpt-oss_F32 gpt-oss F32)
origami_family_test(gpt-oss_MXFP4 gpt-oss MXFP4)
origami_family_test(qwen3moe_MXFP4 qwen3moe MXFP4)

# Embeddings (check_embed.py): a tiny model of a family with or without <arch>.pooling_type, served;
# /v1/embeddings against the family reference's pooled, normalised final hidden states.
# embed_test(NAME ARCH POOLING_TYPE [SERVE_POOLING]): POOLING_TYPE -1 writes no key (mean default).
function(origami_embed_test name arch pooling_type)
  set(_f ${_fam_models}/embed-${name}.gguf)
  add_test(NAME embed_synth_${name}
           COMMAND $<TARGET_FILE:origami> synth --arch ${arch} --preset tiny --type F32 --seed 11
                   --pooling-type ${pooling_type} -o ${_f})
  set_tests_properties(embed_synth_${name} PROPERTIES FIXTURES_SETUP embed_${name} FIXTURES_REQUIRED family_dir
                       TIMEOUT 120)
  set(_extra)
  if(ARGC GREATER 3)
    set(_extra --pooling ${ARGV3})
  endif()
  add_test(NAME embed_family_${name}
           COMMAND ${Python3_EXECUTABLE} ${_fam_dir}/check_embed.py --origami $<TARGET_FILE:origami> -m ${_f} ${_extra})
  set_tests_properties(embed_family_${name} PROPERTIES FIXTURES_REQUIRED embed_${name} TIMEOUT 300
                       LABELS "forward;reference")
endfunction()
origami_embed_test(qwen3_last qwen3 3)      # Qwen3-Embedding style: last-token pooling from the file
origami_embed_test(llama_mean llama -1)     # a generative model: no key, mean pooling
origami_embed_test(gemma3_mean gemma3 1)    # sliding-window layers, embedding scale
origami_embed_test(llama_cls llama -1 cls)  # serve --pooling cls overrides the file

# deepseek2: MLA with a compressed query and V3 routing (sigmoid, selection bias, 2 of 4 groups,
# renormalized, scaled); the same with DeepSeek's YaRN, and with the split attn_k_b/attn_v_b of
# newer converters; and V2-Lite's shape (q from attn_q,
# softmax, two shared experts).
origami_family_test(deepseek2_F32 deepseek2 F32)
origami_family_test(deepseek2_v2_F32 deepseek2 F32 tiny-v2)
origami_family_test(deepseek2_yarn_F32 deepseek2 F32 tiny-yarn)
origami_family_test(deepseek2_split_F32 deepseek2 F32 tiny-split)
origami_family_test(deepseek2_Q8_0 deepseek2 Q8_0)
# The checker on deepseek2: a stand-in built on the reference passes, and the same stand-in with
# rope applied to the no-rope part of each head, or with the selection bias in the expert weights,
# must be reported.
set(_ds_fake ${_fam_dir}/../reference/fake_deepseek2.py)
add_test(NAME forward_checker_accepts_deepseek2
         COMMAND ${Python3_EXECUTABLE} ${_fam_dir}/check_family.py --origami ${_ds_fake}
                 -m ${_fam_models}/deepseek2_F32.gguf --prompt-ids 1,72,101,108,108,111)
set_tests_properties(forward_checker_accepts_deepseek2 PROPERTIES FIXTURES_REQUIRED family_deepseek2_F32 TIMEOUT 300
                     LABELS reference)
foreach(bug rope_nope bias_in_weights)
  add_test(NAME forward_checker_catches_deepseek2_${bug}
           COMMAND ${CMAKE_COMMAND} -E env FAKE_ORIGAMI_BUG=${bug}
                   ${Python3_EXECUTABLE} ${_fam_dir}/check_family.py --origami ${_ds_fake}
                   -m ${_fam_models}/deepseek2_F32.gguf --prompt-ids 1,72,101,108,108,111)
  # Exit status ignored: it must report a logit mismatch (not crash).
  set_tests_properties(forward_checker_catches_deepseek2_${bug} PROPERTIES FIXTURES_REQUIRED family_deepseek2_F32
                       TIMEOUT 300 LABELS reference PASS_REGULAR_EXPRESSION "FAIL [^\n]*: rtol")
endforeach()

# BERT encoders (tests/model/reference/check_bert.py against the float64 bert_np.py): a tiny bert
# with the WordPiece vocabulary of bert-bge, served; /v1/embeddings pooled by mean and by [CLS],
# and a cross-encoder (pooling_type 4, cls head) on /v1/rerank.
foreach(_pool mean:1 cls:2 rank:4)
  string(REPLACE ":" ";" _pp ${_pool})
  list(GET _pp 0 _name)
  list(GET _pp 1 _type)
  set(_f ${_fam_models}/bert-${_name}.gguf)
  add_test(NAME bert_synth_${_name}
           COMMAND $<TARGET_FILE:origami> synth --arch bert --preset tiny --type F32 --seed 13 --pooling-type ${_type}
                   --vocab ${ORIGAMI_SHARED_ABS}/tokenizer/ggml-vocab-bert-bge.gguf -o ${_f})
  set_tests_properties(bert_synth_${_name} PROPERTIES FIXTURES_SETUP bert_${_name} FIXTURES_REQUIRED family_dir
                       TIMEOUT 120)
  add_test(NAME bert_reference_${_name}
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/../reference/check_bert.py
                   --origami $<TARGET_FILE:origami> -m ${_f})
  set_tests_properties(bert_reference_${_name} PROPERTIES FIXTURES_REQUIRED bert_${_name} TIMEOUT 300
                       LABELS "forward;reference")
endforeach()
# nomic-bert: fused Q/K/V, NeoX rope, SwiGLU, no biases; mean pooling, and a rank head.
foreach(_pool mean:1 rank:4)
  string(REPLACE ":" ";" _pp ${_pool})
  list(GET _pp 0 _name)
  list(GET _pp 1 _type)
  set(_f ${_fam_models}/nomic-bert-${_name}.gguf)
  add_test(NAME nomic_bert_synth_${_name}
           COMMAND $<TARGET_FILE:origami> synth --arch nomic-bert --preset tiny --type F32 --seed 17
                   --pooling-type ${_type} --vocab ${ORIGAMI_SHARED_ABS}/tokenizer/ggml-vocab-bert-bge.gguf -o ${_f})
  set_tests_properties(nomic_bert_synth_${_name} PROPERTIES FIXTURES_SETUP nomic_bert_${_name}
                       FIXTURES_REQUIRED family_dir TIMEOUT 120)
  add_test(NAME nomic_bert_reference_${_name}
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/../reference/check_bert.py
                   --origami $<TARGET_FILE:origami> -m ${_f})
  set_tests_properties(nomic_bert_reference_${_name} PROPERTIES FIXTURES_REQUIRED nomic_bert_${_name} TIMEOUT 300
                       LABELS "forward;reference")
endforeach()

# Qwen3-Reranker style decoder reranker (check_rerank.py against the float64 Qwen3 forward of
# families_np.py): qwen3 with pooling_type 4, a yes/no cls.output and the Qwen vocabulary (the
# prompt's <|im_start|> tokens exist), served; /v1/rerank scores sigmoid(yes - no).
set(_f ${_fam_models}/qwen3-rerank.gguf)
add_test(NAME qwen3_rerank_synth
         COMMAND $<TARGET_FILE:origami> synth --arch qwen3 --preset tiny --type F32 --seed 19 --pooling-type 4
                 --vocab ${ORIGAMI_SHARED_ABS}/tokenizer/ggml-vocab-qwen2.gguf -o ${_f})
set_tests_properties(qwen3_rerank_synth PROPERTIES FIXTURES_SETUP qwen3_rerank FIXTURES_REQUIRED family_dir
                     TIMEOUT 120)
add_test(NAME qwen3_rerank_reference
         COMMAND ${Python3_EXECUTABLE} ${_fam_dir}/check_rerank.py --origami $<TARGET_FILE:origami> -m ${_f})
set_tests_properties(qwen3_rerank_reference PROPERTIES FIXTURES_REQUIRED qwen3_rerank TIMEOUT 300
                     LABELS "forward;reference")
