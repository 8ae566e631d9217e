# CTest script: runs the README's quick-start program and compares what it prints with the output
# the README shows. Arguments: PROGRAM, EXPECTED (a file).
execute_process(COMMAND "${PROGRAM}" RESULT_VARIABLE rc OUTPUT_VARIABLE out)
file(READ "${EXPECTED}" expected)
if(NOT rc EQUAL 0 OR NOT out STREQUAL expected)
  message(FATAL_ERROR "README quick-start: exit ${rc}, printed:\n${out}\nthe README says:\n${expected}")
endif()
