#include <gtest/gtest.h>

#include "protocol/wire.hpp"

namespace reclaim::wire {
namespace {

TEST(Wire, EncodesAndDecodesEveryMessage) {
  const std::vector<std::string> lines = {
      "HELLO reclaim/1 4242 0 cpp", "HOOK setup 123", "AT fit train_batch#2",
      "AUDIT after-on_exception",   "EVENT error 5 worker killed by signal",
      "BYE 0",                      "WELCOME reclaim/1", "ARM fit setup", "GO",
      "RAISE RuntimeError injected at fit/setup", "EXIT 3", "HANG", "AUDITED 2",
      "ERR bad things"};
  for (const auto& line : lines) {
    Message m = decode(line);
    EXPECT_FALSE(std::holds_alternative<Unknown>(m)) << line;
    EXPECT_EQ(encode(m), line + "\n");
  }
}

TEST(Wire, KeepsFreeTextWithSpaces) {
  auto m = decode("RAISE KeyboardInterrupt a b  c\n");
  ASSERT_TRUE(std::holds_alternative<Raise>(m));
  EXPECT_EQ(std::get<Raise>(m).type, "KeyboardInterrupt");
  EXPECT_EQ(std::get<Raise>(m).text, "a b  c");
}

TEST(Wire, FlagsMalformedAndIgnoresUnknown) {
  for (const char* bad : {"HELLO reclaim/1 x 0 cpp", "HOOK setup", "AT fit", "GO now", "EXIT",
                          "BYE 1 2", ""}) {
    auto m = decode(bad);
    ASSERT_TRUE(std::holds_alternative<Unknown>(m)) << bad;
    EXPECT_TRUE(std::get<Unknown>(m).malformed) << bad;
  }
  auto m = decode("PING 1");
  ASSERT_TRUE(std::holds_alternative<Unknown>(m));
  EXPECT_FALSE(std::get<Unknown>(m).malformed);
}

TEST(Wire, BarrierAndAbortRoundTrip) {
  EXPECT_EQ(encode(Barrier{"train_batch#3"}), "BARRIER train_batch#3\n");
  auto m = decode("BARRIER train_batch#3\n");
  ASSERT_TRUE(std::holds_alternative<Barrier>(m));
  EXPECT_EQ(std::get<Barrier>(m).name, "train_batch#3");
  EXPECT_EQ(encode(m), "BARRIER train_batch#3\n");

  EXPECT_EQ(encode(Abort{"rank 1 failed: exit 1"}), "ABORT rank 1 failed: exit 1\n");
  m = decode("ABORT rank 1 failed: exit 1\n");
  ASSERT_TRUE(std::holds_alternative<Abort>(m));
  EXPECT_EQ(encode(m), "ABORT rank 1 failed: exit 1\n");
}

TEST(Wire, AbortKeepsItsTextToTheEndOfTheLine) {
  auto m = decode("ABORT rank 2,3 failed: did not reach collective 'post_setup'  within 2000 ms\r\n");
  ASSERT_TRUE(std::holds_alternative<Abort>(m));
  EXPECT_EQ(std::get<Abort>(m).text, "rank 2,3 failed: did not reach collective 'post_setup'  within 2000 ms");
}

TEST(Wire, BarrierNeedsExactlyOneName) {
  for (const char* bad : {"BARRIER", "BARRIER ", "BARRIER post_setup extra", "BARRIER a b c\n"}) {
    auto m = decode(bad);
    ASSERT_TRUE(std::holds_alternative<Unknown>(m)) << bad;
    EXPECT_TRUE(std::get<Unknown>(m).malformed) << bad;
  }
}

TEST(LineBuffer, SplitsAcrossFeedsAndDetectsOverflow) {
  LineBuffer b;
  b.feed("GO\nHA");
  EXPECT_EQ(b.next(), "GO");
  EXPECT_EQ(b.next(), std::nullopt);
  b.feed("NG\n");
  EXPECT_EQ(b.next(), "HANG");
  LineBuffer big;
  big.feed(std::string(kMaxLine + 10, 'x'));
  EXPECT_EQ(big.next(), std::nullopt);
  EXPECT_TRUE(big.overflowed());
}

}  // namespace
}  // namespace reclaim::wire
