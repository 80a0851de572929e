# Keeps the generated region of docs/configuration.md equal to what the plugins' key tables say.
#   cmake -DEXE=<fraiseql-observer> -DDOC=<docs/configuration.md> [-DUPDATE=1] -P check_generated_docs.cmake
# Between the markers below, the file holds exactly the output of
#   fraiseql-observer plugins --describe --all --format markdown
# run with the shipped plugins only (those next to the binary). Without UPDATE a difference fails
# and prints the command that rewrites the region; with UPDATE=1 the region is rewritten.
set(begin_marker "<!-- BEGIN GENERATED: fraiseql-observer plugins --describe --all --format markdown -->")
set(end_marker "<!-- END GENERATED -->")

execute_process(
  COMMAND "${CMAKE_COMMAND}" -E env --unset=FRAISEQL_OBSERVER_PLUGIN_PATH
          "${EXE}" plugins --describe --all --format markdown
  OUTPUT_VARIABLE generated ERROR_VARIABLE errors RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${EXE} plugins --describe --all --format markdown failed (${rc}): ${errors}")
endif()

file(READ "${DOC}" text)
string(FIND "${text}" "${begin_marker}" b)
string(FIND "${text}" "${end_marker}" e)
if(b EQUAL -1 OR e EQUAL -1 OR e LESS b)
  message(FATAL_ERROR "${DOC}: the markers ${begin_marker} ... ${end_marker} are missing")
endif()
string(LENGTH "${begin_marker}" blen)
math(EXPR start "${b} + ${blen} + 1") # the marker's line ends with a newline
math(EXPR len "${e} - ${start}")
string(SUBSTRING "${text}" ${start} ${len} committed)

if(committed STREQUAL generated)
  message(STATUS "${DOC}: the generated plugin reference is up to date")
  return()
endif()
if(UPDATE)
  string(SUBSTRING "${text}" 0 ${start} head)
  string(SUBSTRING "${text}" ${e} -1 tail)
  file(WRITE "${DOC}" "${head}${generated}${tail}")
  message(STATUS "${DOC}: generated plugin reference rewritten")
  return()
endif()
file(WRITE "${CMAKE_CURRENT_BINARY_DIR}/configuration.generated.md" "${generated}")
message(FATAL_ERROR
  "${DOC} differs from the plugins' key tables (the generated text is in "
  "${CMAKE_CURRENT_BINARY_DIR}/configuration.generated.md). Regenerate it with:\n"
  "  cmake -DEXE=${EXE} -DDOC=${DOC} -DUPDATE=1 -P ${CMAKE_CURRENT_LIST_FILE}")
