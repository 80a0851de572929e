# fraiseql_observer_add_plugin(<name> SOURCES <src>... [LINK_LIBRARIES <lib>...]
#                              [OUTPUT_DIRECTORY <dir>] [NO_INSTALL])
#
# Builds a fraiseql-observer plugin: a MODULE library named <name>.so with hidden visibility,
# no undefined symbols, and exactly one exported symbol (fobs_plugin_get_entry). It is installed
# to <libdir>/fraiseql-observer/plugins unless NO_INSTALL is given. The output directory defaults
# to ${FRAISEQL_OBSERVER_PLUGIN_OUTPUT_DIR} when that variable is set.
function(fraiseql_observer_add_plugin name)
  cmake_parse_arguments(ARG "NO_INSTALL" "OUTPUT_DIRECTORY" "SOURCES;LINK_LIBRARIES" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "fraiseql_observer_add_plugin(${name}): SOURCES is required")
  endif()
  # The map file lies beside this file, in the source tree and in the installed package.
  set(_fobs_plugin_map "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/fraiseql-observer-plugin.map")
  add_library(${name} MODULE ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE fraiseql_observer::sdk ${ARG_LINK_LIBRARIES})
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  # The version script keeps inline/template symbols of the C++ runtime private too.
  target_link_options(${name} PRIVATE "LINKER:--version-script=${_fobs_plugin_map}")
  set_property(TARGET ${name} APPEND PROPERTY LINK_DEPENDS "${_fobs_plugin_map}")
  if(NOT CMAKE_CXX_FLAGS MATCHES "sanitize" AND NOT FOBS_SANITIZE)
    target_link_options(${name} PRIVATE "LINKER:--no-undefined")
  endif()
  set(outdir "${ARG_OUTPUT_DIRECTORY}")
  if(NOT outdir AND DEFINED FRAISEQL_OBSERVER_PLUGIN_OUTPUT_DIR)
    set(outdir "${FRAISEQL_OBSERVER_PLUGIN_OUTPUT_DIR}")
  endif()
  if(outdir)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${outdir}")
  endif()
  if(NOT ARG_NO_INSTALL)
    # SPEC section 10: always <prefix>/lib/fraiseql-observer/plugins (the binary looks there).
    install(TARGETS ${name} LIBRARY DESTINATION "lib/fraiseql-observer/plugins")
  endif()
  set_property(GLOBAL APPEND PROPERTY FRAISEQL_OBSERVER_PLUGIN_TARGETS ${name})
endfunction()
