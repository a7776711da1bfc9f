# Runs one golden-output test (see golden.cmake): `twinspeed ARGS` in WORKDIR, then checks the exit
# code and each expectation that was given.
#
# Exact files (STDOUT, STDERR) must equal the output byte for byte; on a mismatch the actual output
# is written next to the build's working directory as <file>.actual for `diff -u`.
#
# DETERMINISTIC runs the command a second time: its stdout must be the same, byte for byte.
#
# Pattern files (STDOUT_PATTERNS, STDERR_PATTERNS) hold one check per line (CMake regular
# expressions; blank lines and lines starting with # are ignored):
#   first: <regex>      the first line of the output matches
#   contains: <regex>   some line of the output matches
#   absent: <regex>     no line of the output matches
#
# JSON files (STDOUT_JSON) check stdout as one JSON document, one check per line; a path is member
# names and array indices separated by spaces (CMake's string(JSON)):
#   has: <path>                  the value exists
#   equals: <path> = <text>      the value (a string's text, a number or literal as written) is text
#   type: <path> = <TYPE>        NULL, NUMBER, STRING, BOOLEAN, ARRAY or OBJECT
cmake_minimum_required(VERSION 3.20)

string(REPLACE "|" ";" args "${ARGS}")
execute_process(COMMAND ${TWINSPEED} ${args}
  WORKING_DIRECTORY ${WORKDIR}
  OUTPUT_VARIABLE stdout_text
  ERROR_VARIABLE stderr_text
  RESULT_VARIABLE code)

set(failures "")
if(DETERMINISTIC)
  execute_process(COMMAND ${TWINSPEED} ${args} WORKING_DIRECTORY ${WORKDIR} OUTPUT_VARIABLE second_stdout
    ERROR_QUIET)
  if(NOT "${second_stdout}" STREQUAL "${stdout_text}")
    string(APPEND failures "a second run printed a different stdout:\n${second_stdout}\n")
  endif()
endif()
if(NOT "${code}" STREQUAL "${EXIT_CODE}")
  string(APPEND failures "exit code ${code}, expected ${EXIT_CODE}\n")
endif()

function(check_exact stream expected_file actual)
  if(DEFINED ENV{TWINSPEED_UPDATE_GOLDEN})
    file(WRITE ${expected_file} "${actual}")
    return()
  endif()
  file(READ ${expected_file} expected)
  if(NOT "${actual}" STREQUAL "${expected}")
    get_filename_component(base ${expected_file} NAME)
    file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/${base}.actual "${actual}")
    set(failures "${failures}${stream} differs from ${expected_file}; actual output: ${CMAKE_CURRENT_BINARY_DIR}/${base}.actual\n" PARENT_SCOPE)
  endif()
endfunction()

function(check_patterns stream pattern_file actual)
  string(REPLACE ";" "\\;" escaped "${actual}")
  string(REPLACE "\n" ";" lines "${escaped}")
  # Empty output has no first line (and no lines for contains/absent to match).
  set(first_line "")
  if(lines)
    list(GET lines 0 first_line)
  endif()
  file(STRINGS ${pattern_file} checks)
  set(found "")
  foreach(check IN LISTS checks)
    if(check MATCHES "^[ \t]*(#|$)")
      continue()
    elseif(check MATCHES "^first: (.*)$")
      set(regex "${CMAKE_MATCH_1}")
      if(NOT first_line MATCHES "${regex}")
        string(APPEND found "${stream}: first line '${first_line}' does not match '${regex}'\n")
      endif()
    elseif(check MATCHES "^(contains|absent): (.*)$")
      set(kind "${CMAKE_MATCH_1}")
      set(regex "${CMAKE_MATCH_2}")
      set(hit FALSE)
      foreach(line IN LISTS lines)
        if(line MATCHES "${regex}")
          set(hit TRUE)
          break()
        endif()
      endforeach()
      if(kind STREQUAL "contains" AND NOT hit)
        string(APPEND found "${stream}: no line matches '${regex}'\n")
      elseif(kind STREQUAL "absent" AND hit)
        string(APPEND found "${stream}: a line matches '${regex}', which should be absent\n")
      endif()
    else()
      string(APPEND found "${pattern_file}: cannot read the check '${check}'\n")
    endif()
  endforeach()
  set(failures "${failures}${found}" PARENT_SCOPE)
endfunction()

function(check_json json_file actual)
  file(STRINGS ${json_file} checks)
  set(found "")
  foreach(check IN LISTS checks)
    if(check MATCHES "^[ \t]*(#|$)")
      continue()
    elseif(check MATCHES "^(has|equals|type): ([^=]*[^ =])( = (.*))?$")
      set(kind "${CMAKE_MATCH_1}")
      set(expected "${CMAKE_MATCH_4}")
      separate_arguments(path UNIX_COMMAND "${CMAKE_MATCH_2}")
      if(kind STREQUAL "type")
        string(JSON value ERROR_VARIABLE error TYPE "${actual}" ${path})
      else()
        string(JSON value ERROR_VARIABLE error GET "${actual}" ${path})
      endif()
      if(error)
        string(APPEND found "stdout JSON: ${CMAKE_MATCH_2}: ${error}\n")
      elseif(NOT kind STREQUAL "has" AND NOT "${value}" STREQUAL "${expected}")
        string(APPEND found "stdout JSON: ${CMAKE_MATCH_2} is '${value}', expected '${expected}'\n")
      endif()
    else()
      string(APPEND found "${json_file}: cannot read the check '${check}'\n")
    endif()
  endforeach()
  set(failures "${failures}${found}" PARENT_SCOPE)
endfunction()

if(DEFINED STDOUT_JSON)
  check_json(${STDOUT_JSON} "${stdout_text}")
endif()

foreach(stream stdout stderr)
  string(TOUPPER ${stream} kind)
  if(DEFINED ${kind})
    check_exact(${stream} ${${kind}} "${${stream}_text}")
  endif()
  if(DEFINED ${kind}_PATTERNS)
    check_patterns(${stream} ${${kind}_PATTERNS} "${${stream}_text}")
  endif()
endforeach()

if(NOT failures STREQUAL "")
  message("command: ${TWINSPEED} ${args}")
  message("--- stdout ---\n${stdout_text}--- stderr ---\n${stderr_text}--------------")
  message(FATAL_ERROR "${failures}")
endif()
