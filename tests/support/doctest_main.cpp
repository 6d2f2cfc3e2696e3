// SPDX-License-Identifier: Apache-2.0
// The main of every test executable. CTest runs each test case on its own, by name
// (--test-case=NAME); a name CTest got wrong (CMake cuts test names at ';') would match no test case and
// pass while running nothing. So a run whose test-case filter matches nothing fails, saying so.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <string_view>

namespace {
unsigned matched_test_cases = 0;

// Hears the number of test cases that passed the filters, at the end of the run.
struct filter_listener : doctest::IReporter {
  explicit filter_listener(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats& stats) override { matched_test_cases = stats.numTestCasesPassingFilters; }
  void test_case_start(const doctest::TestCaseData&) override {}
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};
REGISTER_LISTENER("filter_listener", 1, filter_listener);
}  // namespace

int main(int argc, char** argv) {
  doctest::Context context(argc, argv);
  const int result = context.run();
  if (context.shouldExit()) return result;
  bool filtered = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg(argv[i]);
    filtered = filtered || arg.starts_with("--test-case=") || arg.starts_with("-tc=");
  }
  if (filtered && matched_test_cases == 0) {
    std::fprintf(stderr, "no test case matches the --test-case filter: nothing was run\n");
    return 1;
  }
  return result;
}
