# expect_failure(code expect COMMAND...), shared by the data-parallel fault tests (faults.cmake,
# lm.cmake): the command must fail quickly, with the code and message a failing rank gives.
# Runs COMMAND (a ;-list) and fails unless it ends within 30 s with a non-zero code matching `code`
# (empty: any) and output matching `expect`.
function(expect_failure code expect)
  string(TIMESTAMP start "%s")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 30)
  string(TIMESTAMP stop "%s")
  math(EXPR seconds "${stop} - ${start}")
  message("exit ${rc} after ${seconds} s\n--- stdout\n${out}--- stderr\n${err}")
  if(rc MATCHES "timeout" OR rc EQUAL 0 OR (NOT "${code}" STREQUAL "" AND NOT rc EQUAL code))
    message(FATAL_ERROR "expected exit code ${code} within 30 s")
  endif()
  if(NOT "${out}${err}" MATCHES "${expect}")
    message(FATAL_ERROR "the output does not match '${expect}'")
  endif()
endfunction()
