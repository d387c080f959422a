#include "policy/backoff.h"

#include <cmath>
#include <limits>

#include "gtest/gtest.h"

namespace policy {
namespace {

constexpr double kNoJitter = 0.5;  // The middle of [0, 1) scales by exactly 1.

RetryPolicy Retry(absl::Duration initial, absl::Duration max, double multiplier,
                  double jitter) {
  RetryPolicy r;
  r.initial_delay = initial;
  r.max_delay = max;
  r.multiplier = multiplier;
  r.jitter = jitter;
  return r;
}

TEST(BackoffDelayTest, GrowsExponentiallyUpToMaxDelay) {
  const RetryPolicy r =
      Retry(absl::Milliseconds(100), absl::Milliseconds(700), 2.0, 0.5);
  EXPECT_EQ(BackoffDelay(r, 0, kNoJitter), absl::Milliseconds(100));
  EXPECT_EQ(BackoffDelay(r, 1, kNoJitter), absl::Milliseconds(200));
  EXPECT_EQ(BackoffDelay(r, 2, kNoJitter), absl::Milliseconds(400));
  EXPECT_EQ(BackoffDelay(r, 3, kNoJitter), absl::Milliseconds(700));
  EXPECT_EQ(BackoffDelay(r, 30, kNoJitter), absl::Milliseconds(700));
}

TEST(BackoffDelayTest, JitterSpreadsAroundTheBase) {
  const RetryPolicy r = Retry(absl::Seconds(1), absl::Seconds(10), 2.0, 0.5);
  EXPECT_EQ(BackoffDelay(r, 0, 0.0), absl::Milliseconds(500));
  EXPECT_EQ(BackoffDelay(r, 0, 0.75), absl::Milliseconds(1250));
  const absl::Duration top = BackoffDelay(r, 0, std::nextafter(1.0, 0.0));
  EXPECT_GT(top, absl::Milliseconds(1499));
  EXPECT_LE(top, absl::Milliseconds(1500));  // Rounding may reach the bound.
}

TEST(BackoffDelayTest, JitterAppliesAfterTheCap) {
  const RetryPolicy r = Retry(absl::Seconds(1), absl::Seconds(2), 2.0, 0.5);
  EXPECT_EQ(BackoffDelay(r, 5, 0.0), absl::Seconds(1));
  EXPECT_EQ(BackoffDelay(r, 5, 0.75), absl::Milliseconds(2500));
}

TEST(BackoffDelayTest, ZeroJitterIgnoresRandomness) {
  const RetryPolicy r = Retry(absl::Milliseconds(50), absl::Seconds(1), 2, 0);
  EXPECT_EQ(BackoffDelay(r, 1, 0.0), absl::Milliseconds(100));
  EXPECT_EQ(BackoffDelay(r, 1, 0.999), absl::Milliseconds(100));
}

TEST(BackoffDelayTest, MultiplierOneIsConstant) {
  const RetryPolicy r = Retry(absl::Milliseconds(30), absl::Seconds(1), 1, 0);
  for (int i = 0; i < 100; i += 7) {
    EXPECT_EQ(BackoffDelay(r, i, kNoJitter), absl::Milliseconds(30)) << i;
  }
}

TEST(BackoffDelayTest, HugeIndexesSaturateWithoutOverflow) {
  const RetryPolicy r = Retry(absl::Milliseconds(50), absl::Seconds(1), 10, 1);
  EXPECT_EQ(BackoffDelay(r, 5000, kNoJitter), absl::Seconds(1));
  EXPECT_EQ(BackoffDelay(r, std::numeric_limits<int>::max(), kNoJitter),
            absl::Seconds(1));
  EXPECT_EQ(BackoffDelay(r, 5000, 1.0), absl::Seconds(2));
}

TEST(BackoffDelayTest, OutOfRangeInputsAreClamped) {
  const RetryPolicy r = Retry(absl::Milliseconds(100), absl::Seconds(1), 2, 1);
  EXPECT_EQ(BackoffDelay(r, -3, kNoJitter), absl::Milliseconds(100));
  EXPECT_EQ(BackoffDelay(r, 0, -5.0), absl::ZeroDuration());  // Full jitter.
  EXPECT_EQ(BackoffDelay(r, 0, 7.0), absl::Milliseconds(200));
}

TEST(BackoffDelayTest, ZeroDelaysStayZero) {
  EXPECT_EQ(BackoffDelay(Retry(absl::ZeroDuration(), absl::Seconds(1), 2, 0.5),
                         40, 0.9),
            absl::ZeroDuration());
  EXPECT_EQ(
      BackoffDelay(Retry(absl::Milliseconds(5), absl::ZeroDuration(), 2, 0.5),
                   3, 0.9),
      absl::ZeroDuration());
}

TEST(BackoffDelayTest, DefaultPolicyStartsAtFiftyMilliseconds) {
  const RetryPolicy r;
  EXPECT_EQ(BackoffDelay(r, 0, kNoJitter), absl::Milliseconds(50));
  EXPECT_EQ(BackoffDelay(r, 4, kNoJitter), absl::Milliseconds(800));
  EXPECT_EQ(BackoffDelay(r, 5, kNoJitter), absl::Seconds(1));
}

}  // namespace
}  // namespace policy
