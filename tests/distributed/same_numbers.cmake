# `mpirun -n N gradgraph train` with N = 1, 2, 3 and 4 and the same flags and seed, in float64: the
# saved weights must agree within 1e-12 relative (docs/distributed.md, "Same numbers"). 200 training
# rows in global batches of 12: 16 full batches and one of 8 rows, which 3 processes share 2:3:3.
set(flags train --dataset spiral --samples 250 --split 0.2 --layers 2,16,3 --activation tanh --epochs 3
          --batch-size 12 --seed 3 --dtype f64 --progress lines)
file(REMOVE_RECURSE ${DIR})
file(MAKE_DIRECTORY ${DIR})
foreach(np 1 2 3 4)
  execute_process(COMMAND ${MPIEXEC} -n ${np} ${GRADGRAPH} ${flags} --save ${DIR}/np${np}.safetensors
                          --log ${DIR}/np${np}.jsonl
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 60)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "mpirun -n ${np}: exit ${rc}\n${out}\n${err}")
  endif()
  file(STRINGS ${DIR}/np${np}.jsonl lines)
  foreach(line IN LISTS lines)
    if(NOT line MATCHES "\"world_size\": ${np}}$")
      message(FATAL_ERROR "mpirun -n ${np}: a --log line without \"world_size\": ${np}: ${line}")
    endif()
  endforeach()
  if(np GREATER 1)
    execute_process(COMMAND ${COMPARE} ${DIR}/np1.safetensors ${DIR}/np${np}.safetensors 1e-12 RESULT_VARIABLE rc
                    OUTPUT_VARIABLE out)
    message("1 against ${np} processes: ${out}")
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "the weights of 1 and ${np} processes differ by more than 1e-12")
    endif()
  endif()
endforeach()
