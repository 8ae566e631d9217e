# CTest script: examples/training_loop (the loop written out in C++) and `gradgraph train` with the
# same data, seed and settings print the same epoch lines (the CLI's samples/s left out), so the
# tutorial can say they are one and the same run. Arguments: EXAMPLE, CLI (the two programs).
cmake_policy(SET CMP0007 NEW)
execute_process(COMMAND "${EXAMPLE}" RESULT_VARIABLE example_rc OUTPUT_VARIABLE example_out)
execute_process(COMMAND "${CLI}" train --dataset spiral --layers 2,16,16,3 --activation sigmoid --optimizer adam
                        --lr 0.02 --batch-size 32 --epochs 200 --split 0.2 --seed 0
                RESULT_VARIABLE cli_rc OUTPUT_VARIABLE cli_out)
if(NOT example_rc EQUAL 0 OR NOT cli_rc EQUAL 0)
  message(FATAL_ERROR "training_loop exited ${example_rc}, gradgraph train ${cli_rc}")
endif()
foreach(who example cli)
  string(REGEX REPLACE "  [0-9.e+]+ samples/s" "" text "${${who}_out}")
  string(REPLACE "\n" ";" lines "${text}")
  list(FILTER lines INCLUDE REGEX "^epoch +[0-9]+  ")
  set(${who}_lines "${lines}")
endforeach()
list(LENGTH example_lines count)
if(count LESS 2 OR NOT example_lines STREQUAL cli_lines)
  string(REPLACE ";" "\n" example_text "${example_lines}")
  string(REPLACE ";" "\n" cli_text "${cli_lines}")
  message(FATAL_ERROR "the example printed:\n${example_text}\ngradgraph train printed:\n${cli_text}")
endif()
message(STATUS "${count} epoch lines equal")
