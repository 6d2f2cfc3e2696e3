# earlybert_compile_fail(NAME <name> SOURCE <file> MESSAGE <regex>)
#   A test that passes when building <file> fails with a diagnostic matching <regex>: a shape error
#   the types can see must be a compile error, and a readable one.
# earlybert_compile_fail(NAME <name> SOURCE <file> MUST_COMPILE)
#   The control: a test that passes when building <file> succeeds, so that the failures above fail
#   for the reason their message names.
# The targets are excluded from the normal build; each test builds its target on demand. The tests
# share the build tree, so they never run concurrently with each other.
function(earlybert_compile_fail)
  cmake_parse_arguments(PARSE_ARGV 0 arg "MUST_COMPILE" "NAME;SOURCE;MESSAGE" "")
  set(target "compile_fail_${arg_NAME}")
  add_executable(${target} EXCLUDE_FROM_ALL ${arg_SOURCE})
  target_link_libraries(${target} PRIVATE earlybert::earlybert)
  set(test "compile_fail: ${arg_NAME}")
  add_test(NAME "${test}" COMMAND "${CMAKE_COMMAND}" --build "${CMAKE_BINARY_DIR}" --target ${target} --config $<CONFIG>)
  set_tests_properties("${test}" PROPERTIES RESOURCE_LOCK earlybert_build_tree)
  if(NOT arg_MUST_COMPILE)
    set_tests_properties("${test}" PROPERTIES PASS_REGULAR_EXPRESSION "${arg_MESSAGE}")
  endif()
endfunction()
