# Golden-output tests of the `twinspeed` command, reusable by every command's tests.
#
#   ts_cli_golden_test(NAME
#     ARGS <arguments of twinspeed...>          # run in the repository root
#     [EXIT_CODE <n>]                           # default 0
#     [STDOUT <file>] [STDERR <file>]           # exact expected output, relative to tests/cli/
#     [STDOUT_PATTERNS <file>] [STDERR_PATTERNS <file>]   # pattern files, syntax in run_golden.cmake
#     [STDOUT_JSON <file>]                      # JSON field checks of stdout, syntax in run_golden.cmake
#     [DETERMINISTIC]                           # a second run must print the same stdout, byte for byte
#     [LABELS <labels...>])                     # "cli" is always added
#
# The test is "cli.NAME". TWINSPEED_UPDATE_GOLDEN=1 in the environment rewrites the exact files
# from the current output instead of comparing (review the diff before committing).
set(TS_CLI_GOLDEN_DIR ${CMAKE_CURRENT_LIST_DIR})

function(ts_cli_golden_test name)
  cmake_parse_arguments(ARG "DETERMINISTIC" "EXIT_CODE;STDOUT;STDERR;STDOUT_PATTERNS;STDERR_PATTERNS;STDOUT_JSON" "ARGS;LABELS" ${ARGN})
  if(NOT DEFINED ARG_EXIT_CODE)
    set(ARG_EXIT_CODE 0)
  endif()
  # "|" separates the arguments: a CMake list would be split by add_test itself.
  string(JOIN "|" joined_args ${ARG_ARGS})
  set(expect)
  foreach(kind STDOUT STDERR STDOUT_PATTERNS STDERR_PATTERNS STDOUT_JSON)
    if(ARG_${kind})
      list(APPEND expect "-D${kind}=${TS_CLI_GOLDEN_DIR}/${ARG_${kind}}")
    endif()
  endforeach()
  if(ARG_DETERMINISTIC)
    list(APPEND expect "-DDETERMINISTIC=ON")
  endif()
  add_test(NAME cli.${name}
    COMMAND ${CMAKE_COMMAND}
      -DTWINSPEED=$<TARGET_FILE:twinspeed>
      "-DARGS=${joined_args}"
      -DWORKDIR=${PROJECT_SOURCE_DIR}
      -DEXIT_CODE=${ARG_EXIT_CODE}
      ${expect}
      -P ${TS_CLI_GOLDEN_DIR}/run_golden.cmake)
  set_tests_properties(cli.${name} PROPERTIES LABELS "cli;${ARG_LABELS}")
endfunction()
