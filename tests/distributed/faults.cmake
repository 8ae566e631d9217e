# Faults of a data-parallel `gradgraph train` (issue 15), by MODE:
#   kill        the last of 3 processes is killed mid-epoch: mpirun stops the others within 30 s naming
#               it; the checkpoint of the last epoch end is intact, and --resume from it (with 2
#               processes) ends with the weights of an uninterrupted run
#   oom         the last process runs out of memory: every process exits, with its message
#   bad-input   the last process's data file is malformed: every process exits, with its message
#   other-options  the last process has another --lr: a clear error at the start, every process exits
#   other-data     the last process reads other data (same shape): the same
cmake_policy(SET CMP0054 NEW)
set(flags --layers 2,8,2 --activation tanh --epochs 4 --batch-size 6 --seed 5 --dtype f64 --progress lines)
file(REMOVE_RECURSE ${DIR})
file(MAKE_DIRECTORY ${DIR})
# Two small CSV files of the same shape (30 points of two classes), and a malformed one.
set(good "x,y,label\n")
set(other "x,y,label\n")
foreach(i RANGE 0 29)
  math(EXPR a "${i} % 7 - 3")
  math(EXPR b "${i} % 5 - 2")
  math(EXPR label "(${a} + ${b} + 5) % 2")
  string(APPEND good "${a}.5,${b}.25,${label}\n")
  string(APPEND other "${b}.5,${a}.25,${label}\n")
endforeach()
file(WRITE ${DIR}/good.csv "${good}")
file(WRITE ${DIR}/other.csv "${other}")
file(WRITE ${DIR}/bad.csv "x,y,label\n1,2,0\n3,oops,1\n")

include(${CMAKE_CURRENT_LIST_DIR}/expect_failure.cmake)

set(run ${GRADGRAPH} train --data ${DIR}/good.csv ${flags})
if(MODE STREQUAL "kill")
  execute_process(COMMAND ${MPIEXEC} -n 2 ${run} --save ${DIR}/uninterrupted.safetensors RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "the uninterrupted run failed: ${rc}")
  endif()
  # 30 rows, batches of 6: 5 steps an epoch; step 13 is in the middle of epoch 3.
  expect_failure("" "rank 2.*(signal 9|Killed)" ${MPIEXEC} -n 3 ${run} --checkpoint ${DIR}/last.safetensors
                 --checkpoint-every 1 --test-fault kill:12)
  execute_process(COMMAND ${MPIEXEC} -n 2 ${run} --resume ${DIR}/last.safetensors --save ${DIR}/resumed.safetensors
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message("${out}${err}")
  if(NOT rc EQUAL 0 OR NOT out MATCHES "resuming from .*: epoch 3, batch 1, step 10")
    message(FATAL_ERROR "--resume from the last checkpoint failed: ${rc}")
  endif()
  execute_process(COMMAND ${COMPARE} ${DIR}/uninterrupted.safetensors ${DIR}/resumed.safetensors 1e-12
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out)
  message("${out}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "the resumed run's weights differ from the uninterrupted run's")
  endif()
elseif(MODE STREQUAL "oom")
  expect_failure(7 "rank 2 of 3: gradgraph train: out of memory" ${MPIEXEC} -n 3 ${run} --test-fault oom:3)
elseif(MODE STREQUAL "bad-input")
  expect_failure(3 "rank 2 of 3: gradgraph train: .*bad.csv:3:2: 'oops' is not a number" ${MPIEXEC} -n 2 ${run} : -n 1 ${GRADGRAPH} train
                 --data ${DIR}/bad.csv ${flags})
elseif(MODE STREQUAL "other-options")
  expect_failure(6 "started with different options .*: rank 2 differs from rank 0" ${MPIEXEC} -n 2 ${run} : -n 1
                 ${run} --lr 0.2)
elseif(MODE STREQUAL "other-data")
  expect_failure(6 "started with different data .*: rank 2 differs from rank 0" ${MPIEXEC} -n 2 ${run} : -n 1
                 ${GRADGRAPH} train --data ${DIR}/other.csv ${flags})
else()
  message(FATAL_ERROR "unknown MODE '${MODE}'")
endif()
