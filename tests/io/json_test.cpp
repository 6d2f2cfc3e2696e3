// SPDX-License-Identifier: Apache-2.0
#include <cstdint>
#include <limits>
#include <optional>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "earlybert/io/json.hpp"

using earlybert::io_error;
using earlybert::read_whole_number;
using earlybert::read_whole_numbers;
using earlybert::whole_number;
using nlohmann::json;

TEST_CASE("json: whole_number takes a whole number that fits, nothing else") {
  CHECK(whole_number<int>(json(7)) == 7);
  CHECK(whole_number<int>(json(-7)) == -7);
  CHECK(whole_number<int>(json(std::uint64_t{7})) == 7);
  CHECK(whole_number<int>(json(3.0)) == 3);  // some tools write whole numbers as floats
  CHECK(whole_number<int>(json(-0.0)) == 0);
  CHECK(whole_number<int>(json(2147483647)) == 2147483647);
  CHECK(whole_number<int>(json(-2147483648LL)) == -2147483648LL);

  CHECK(whole_number<int>(json(2.5)) == std::nullopt);
  CHECK(whole_number<int>(json(2147483648LL)) == std::nullopt);
  CHECK(whole_number<int>(json(-2147483649LL)) == std::nullopt);
  CHECK(whole_number<int>(json(2147483648.0)) == std::nullopt);
  CHECK(whole_number<unsigned>(json(-1)) == std::nullopt);
  CHECK(whole_number<std::uint64_t>(json(-1.0)) == std::nullopt);
  CHECK(whole_number<int>(json(true)) == std::nullopt);
  CHECK(whole_number<int>(json("8")) == std::nullopt);
  CHECK(whole_number<int>(json(nullptr)) == std::nullopt);
  CHECK(whole_number<int>(json::array({1})) == std::nullopt);
}

TEST_CASE("json: whole_number is defined at the ends of the 64-bit range, where a plain cast is not") {
  // 5.55556e+76 is the value a fuzzer found: nlohmann's get<int>() casts it, which is undefined behaviour.
  CHECK(whole_number<int>(json(5.55556e+76)) == std::nullopt);
  CHECK(whole_number<std::int64_t>(json(1e300)) == std::nullopt);
  CHECK(whole_number<std::int64_t>(json(-1e300)) == std::nullopt);
  CHECK(whole_number<std::int64_t>(json(0x1p63)) == std::nullopt);  // 2^63: one past the largest int64
  CHECK(whole_number<std::int64_t>(json(-0x1p63)) == INT64_MIN);
  CHECK(whole_number<std::int64_t>(json(0x1p62)) == std::int64_t{1} << 62);
  CHECK(whole_number<std::uint64_t>(json(UINT64_MAX)) == UINT64_MAX);
  CHECK(whole_number<std::int64_t>(json(UINT64_MAX)) == std::nullopt);
  CHECK(whole_number<int>(json(std::numeric_limits<double>::infinity())) == std::nullopt);
  CHECK(whole_number<int>(json(std::numeric_limits<double>::quiet_NaN())) == std::nullopt);
}

TEST_CASE("json: read_whole_number(s) name what was read, the value found and the range expected") {
  CHECK(read_whole_number<int>(json(12), "steps") == 12);
  CHECK_THROWS_WITH_AS(read_whole_number<int>(json(1.5), "steps"), "steps is 1.5, expected a whole number from -2147483648 to 2147483647",
                       io_error);
  CHECK(read_whole_numbers<long>(json::array({1, 2, 3}), "list") == std::vector<long>{1, 2, 3});
  CHECK_THROWS_WITH_AS(read_whole_numbers<int>(json::array({1, "2"}), "list"),
                       "list[1] is \"2\", expected a whole number from -2147483648 to 2147483647", io_error);
  CHECK_THROWS_WITH_AS(read_whole_numbers<int>(json::object(), "list"), "list is {}, expected a list of whole numbers", io_error);
}

TEST_CASE("json: a long value in a message is cut at a character boundary") {
  std::string euros;
  for (int i = 0; i < 30; ++i) euros += "\u20ac";  // three bytes each
  std::string expected = "n is \"a";
  for (int i = 0; i < 18; ++i) expected += "\u20ac";  // 56 bytes with the quote and the a: the 19th would be cut
  expected += "..., expected a whole number from -2147483648 to 2147483647";
  CHECK_THROWS_WITH_AS(read_whole_number<int>(json("a" + euros), "n"), expected.c_str(), io_error);
}
