#pragma once
// A fixed-bucket histogram in the Prometheus text exposition format ("histogram" type: cumulative
// _bucket{le=...} series, _sum and _count). Recording is a short scan of at most 16 bounds and
// two additions: no allocation, fit for once per loop iteration.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <string>
#include <string_view>

#include "chat/prometheus_text.h"

namespace chat {

class Histogram {
 public:
  static constexpr size_t kMaxBounds = 16;

  // `bounds_us`: increasing upper bounds in microseconds (at most kMaxBounds; +Inf is implied).
  Histogram(std::initializer_list<uint64_t> bounds_us) {
    for (uint64_t bound : bounds_us) {
      if (size_ < kMaxBounds) bounds_[size_++] = bound;
    }
  }

  // Records one observation of `us` microseconds.
  void record(uint64_t us) {
    size_t i = 0;
    while (i < size_ && us > bounds_[i]) ++i;
    ++counts_[i];  // counts_[size_] is the +Inf bucket
    sum_us_ += us;
    ++count_;
  }

  uint64_t count() const { return count_; }
  // Observations at most `bounds_us[index]` (not cumulative); index == bounds size: over all.
  uint64_t bucket(size_t index) const { return index <= size_ ? counts_[index] : 0; }

  // Appends the HELP, TYPE and series of `name` (values in seconds, as Prometheus expects).
  void render(std::string& out, std::string_view name, std::string_view help) const {
    append_metric_header(out, name, "histogram", help);
    uint64_t cumulative = 0;
    char text[64];
    for (size_t i = 0; i <= size_; ++i) {
      cumulative += counts_[i];
      out += name;
      if (i < size_) {
        std::snprintf(text, sizeof text, "_bucket{le=\"%g\"} ", static_cast<double>(bounds_[i]) / 1e6);
      } else {
        std::snprintf(text, sizeof text, "_bucket{le=\"+Inf\"} ");
      }
      out += text;
      out += std::to_string(cumulative);
      out += '\n';
    }
    std::snprintf(text, sizeof text, "_sum %.6f\n", static_cast<double>(sum_us_) / 1e6);
    out += name;
    out += text;
    out += name;
    out += "_count ";
    out += std::to_string(count_);
    out += '\n';
  }

 private:
  std::array<uint64_t, kMaxBounds> bounds_{};
  std::array<uint64_t, kMaxBounds + 1> counts_{};
  size_t size_ = 0;
  uint64_t sum_us_ = 0;
  uint64_t count_ = 0;
};

}  // namespace chat
