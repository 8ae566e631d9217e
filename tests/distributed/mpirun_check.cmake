# Runs PROGRAM under MPIEXEC with NP processes (arguments ARGS, a ;-list) and checks that the run ends
# within MAX_SECONDS with a non-zero exit code (EXPECT_CODE, when given) and output matching EXPECT (a
# regular expression).
string(TIMESTAMP start "%s")
execute_process(COMMAND ${MPIEXEC} -n ${NP} ${PROGRAM} ${ARGS} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                ERROR_VARIABLE err TIMEOUT ${MAX_SECONDS})
string(TIMESTAMP stop "%s")
math(EXPR seconds "${stop} - ${start}")
message("exit: ${rc} after ${seconds} s\n--- stdout\n${out}--- stderr\n${err}")
if(rc MATCHES "timeout" OR seconds GREATER_EQUAL MAX_SECONDS)
  message(FATAL_ERROR "the ranks did not stop within ${MAX_SECONDS} s")
endif()
if(rc EQUAL 0)
  message(FATAL_ERROR "exit code 0: a failed rank must end the run with a non-zero code")
endif()
if(NOT "${EXPECT_CODE}" STREQUAL "" AND NOT rc EQUAL EXPECT_CODE)
  message(FATAL_ERROR "exit code ${rc}, expected ${EXPECT_CODE}")
endif()
if(NOT "${out}${err}" MATCHES "${EXPECT}")
  message(FATAL_ERROR "the output does not match '${EXPECT}'")
endif()
