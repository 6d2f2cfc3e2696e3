// SPDX-License-Identifier: Apache-2.0
#pragma once
// What the `earlybert` program writes on stderr (docs/cli.md, "Messages"). Three kinds of line:
//
//   status   "<subcommand>: <what>"          what was read, progress, evaluations, the ticket
//   note     "<subcommand>: note: <what>"    something the user may want to act on (a forced slow
//                                            BLAS kernel set, a skipped step, --resume without a
//                                            state); each distinct note is printed once per process
//   error    "earlybert <subcommand>: <what>" the reason a run failed: exactly one line, the last one
//
// --quiet, or EARLYBERT_QUIET=1 in the environment, silences status lines and notes; an error is
// never silenced. Notes and status lines never start with "earlybert ", so a script that wants the
// error takes the one line that does.
//
// All stderr output of the program goes through here, so an in-place progress bar on a terminal is
// always ended before another line is written.

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include <earlybert/core/error.hpp>

namespace earlybert::cli::messages {

namespace detail {
struct stderr_state {
  std::mutex mutex;
  bool quiet = false;
  bool line_open = false;          // a progress bar was drawn in place and its line not ended
  std::set<std::string> notes_said;
};
inline stderr_state& state() {
  static stderr_state s;
  return s;
}
// Ends an in-place line so that the next line starts at column 0 (the caller holds the mutex).
inline void end_open_line(stderr_state& s) {
  if (s.line_open) std::fputc('\n', stderr);
  s.line_open = false;
}
}  // namespace detail

// Reads --quiet and EARLYBERT_QUIET (unset, "0" or "1"); either one silences status lines and notes.
inline void configure(bool quiet_flag) {
  bool quiet = quiet_flag;
  if (const char* variable = std::getenv("EARLYBERT_QUIET"); variable != nullptr && *variable != '\0') {
    const std::string_view value(variable);
    if (value != "0" && value != "1") {
      throw config_error(fmt::format("the environment variable EARLYBERT_QUIET is '{}', expected 0 or 1", value));
    }
    quiet = quiet || value == "1";
  }
  auto& s = detail::state();
  std::scoped_lock lock(s.mutex);
  s.quiet = quiet;
}

inline bool quiet() {
  auto& s = detail::state();
  std::scoped_lock lock(s.mutex);
  return s.quiet;
}

// "<command>: <text>", unless quiet.
template <class... Args>
void status(std::string_view command, fmt::format_string<Args...> format, Args&&... args) {
  auto& s = detail::state();
  std::scoped_lock lock(s.mutex);
  if (s.quiet) return;
  detail::end_open_line(s);
  fmt::print(stderr, "{}: {}\n", command, fmt::format(format, std::forward<Args>(args)...));
}

// "<command>: note: <text>", unless quiet or the same text was noted before in this process.
template <class... Args>
void note(std::string_view command, fmt::format_string<Args...> format, Args&&... args) {
  std::string text = fmt::format(format, std::forward<Args>(args)...);
  auto& s = detail::state();
  std::scoped_lock lock(s.mutex);
  if (s.quiet || !s.notes_said.insert(text).second) return;
  detail::end_open_line(s);
  fmt::print(stderr, "{}: note: {}\n", command, text);
}

// A progress line: drawn in place (no newline, "\r" first) on a terminal, a whole line otherwise.
inline void progress(std::string_view text, bool in_place) {
  auto& s = detail::state();
  std::scoped_lock lock(s.mutex);
  if (s.quiet) return;
  if (in_place) {
    fmt::print(stderr, "\r{}", text);
    std::fflush(stderr);
    s.line_open = true;
    return;
  }
  detail::end_open_line(s);
  fmt::print(stderr, "{}\n", text);
}

// Ends an in-place progress line (before output on stdout, or at the end of a stage).
inline void end_line() {
  auto& s = detail::state();
  std::scoped_lock lock(s.mutex);
  detail::end_open_line(s);
}

// The one error line, "earlybert <command>: <what>": never silenced. A line break inside `what`
// (a message quoting its input, say) is written as "\n", so that the error stays one line.
inline void error(std::string_view command, std::string_view what) {
  std::string line;
  for (const char c : what) line += c == '\n' ? std::string_view("\\n") : std::string_view(&c, 1);
  auto& s = detail::state();
  std::scoped_lock lock(s.mutex);
  detail::end_open_line(s);
  if (command.empty()) fmt::print(stderr, "earlybert: {}\n", line);  // before a subcommand was named
  else fmt::print(stderr, "earlybert {}: {}\n", command, line);
}

}  // namespace earlybert::cli::messages
