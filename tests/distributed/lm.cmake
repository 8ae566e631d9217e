# `mpirun -n N gradgraph lm train` (issue 15 for the language model), by MODE:
#   same-numbers  a word list (words of several lengths: the ranks' shares hold different numbers of
#                 targets) with 1, 2 and 3 processes and a text stream with 1 and 2, in float64: the
#                 saved weights agree within 1e-12 relative; every --log line says "world_size": N
#   resume        stopped after step 4 on 2 processes, resumed on 3: the weights of 1 uninterrupted
#   indivisible   --batch-size 6 on 4 processes: a usage error naming 4 (exit 2)
#   other-data    the last process reads another text: a clear error at the start (exit 6)
#   bad-input     the last process's text is not UTF-8: every process exits with its message (exit 3)
#   oom           the last process runs out of memory at step 3: every process exits with it (exit 7)
cmake_policy(SET CMP0054 NEW)
include(${CMAKE_CURRENT_LIST_DIR}/expect_failure.cmake)
file(REMOVE_RECURSE ${DIR})
file(MAKE_DIRECTORY ${DIR})
set(names anna bob carla dave emma frank greta hugo iris jack kate liam mona nils olga paul quin rosa sven tina
          uwe vera walt xena yann zoe)
list(JOIN names "\n" text)
file(WRITE ${DIR}/names.txt "${text}\n${text}\n")
file(WRITE ${DIR}/other.txt "${text}\n${text}\nextra\n")
string(REPEAT "the quick brown fox jumps over the lazy dog; " 12 prose)
file(WRITE ${DIR}/prose.txt "${prose}")
set(words lm train --text ${DIR}/names.txt --mode words --model gpt --layers 1 --heads 2 --embedding 8 --steps 6
          --batch-size 6 --warmup 2 --eval-every 3 --dtype f64 --seed 4 --progress lines)
set(stream lm train --text ${DIR}/prose.txt --model lstm --layers 1 --embedding 6 --hidden 8 --context 8 --steps 5
           --batch-size 4 --warmup 1 --eval-every 5 --dtype f64 --seed 2 --progress lines)

# Trains with `np` processes and `flags`, saving ${DIR}/<name>.safetensors and its log; checks the log.
function(train np name)
  execute_process(COMMAND ${MPIEXEC} -n ${np} ${GRADGRAPH} ${ARGN} --save ${DIR}/${name}.safetensors
                          --log ${DIR}/${name}.jsonl
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 60)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "mpirun -n ${np} (${name}): exit ${rc}\n${out}\n${err}")
  endif()
  file(STRINGS ${DIR}/${name}.jsonl lines)
  foreach(line IN LISTS lines)
    if(NOT line MATCHES "\"world_size\": ${np}}$")
      message(FATAL_ERROR "mpirun -n ${np}: a --log line without \"world_size\": ${np}: ${line}")
    endif()
  endforeach()
endfunction()

# Fails unless the weights in ${DIR}/a.safetensors and b.safetensors agree within 1e-12 relative.
function(same a b)
  execute_process(COMMAND ${COMPARE} ${DIR}/${a}.safetensors ${DIR}/${b}.safetensors 1e-12 RESULT_VARIABLE rc
                  OUTPUT_VARIABLE out)
  message("${a} against ${b}: ${out}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "the weights of ${a} and ${b} differ by more than 1e-12")
  endif()
endfunction()

if(MODE STREQUAL "same-numbers")
  foreach(np 1 2 3)
    train(${np} words${np} ${words})
  endforeach()
  same(words1 words2)
  same(words1 words3)
  train(1 stream1 ${stream})
  train(2 stream2 ${stream})
  same(stream1 stream2)
elseif(MODE STREQUAL "resume")
  train(1 uninterrupted ${words})
  execute_process(COMMAND ${MPIEXEC} -n 2 ${GRADGRAPH} ${words} --stop-after 4 --checkpoint ${DIR}/stop.safetensors
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 60)
  if(NOT rc EQUAL 130 OR NOT EXISTS ${DIR}/stop.safetensors)
    message(FATAL_ERROR "--stop-after 4 on 2 processes: exit ${rc} (130 expected) or no checkpoint\n${out}\n${err}")
  endif()
  train(3 resumed ${words} --resume ${DIR}/stop.safetensors)
  same(uninterrupted resumed)
elseif(MODE STREQUAL "indivisible")
  expect_failure(2 "--batch-size 6: the global batch is split evenly over the 4 processes: give a multiple of 4"
                 ${MPIEXEC} -n 4 ${GRADGRAPH} ${words})
elseif(MODE STREQUAL "other-data")
  string(REPLACE "names.txt" "other.txt" other "${words}")
  expect_failure(6 "started with different text .*: rank 2 differs from rank 0" ${MPIEXEC} -n 2 ${GRADGRAPH} ${words}
                 : -n 1 ${GRADGRAPH} ${other})
elseif(MODE STREQUAL "bad-input")
  string(ASCII 255 byte) # a byte UTF-8 never uses
  file(WRITE ${DIR}/bad.txt "ab\n${byte}\n")
  string(REPLACE "names.txt" "bad.txt" bad "${words}")
  expect_failure(3 "rank 2 of 3: gradgraph lm train: .*bad.txt: byte 3: not UTF-8" ${MPIEXEC} -n 2 ${GRADGRAPH}
                 ${words} : -n 1 ${GRADGRAPH} ${bad})
elseif(MODE STREQUAL "oom")
  expect_failure(7 "rank 2 of 3: gradgraph lm train: out of memory" ${MPIEXEC} -n 3 ${GRADGRAPH} ${words}
                 --test-fault oom:3)
else()
  message(FATAL_ERROR "unknown MODE '${MODE}'")
endif()
