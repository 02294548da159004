#pragma once
// The Prometheus text exposition format (version 0.0.4), written once for every /metrics
// renderer: a metric's HELP and TYPE lines, and a plain sample.
#include <cstdint>
#include <string>
#include <string_view>

namespace chat {

// Appends "# HELP name help" and "# TYPE name type" (type: counter, gauge, histogram).
inline void append_metric_header(std::string& out, std::string_view name, std::string_view type,
                                 std::string_view help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

// Appends a metric with one unlabelled sample whose value is already text.
inline void append_metric(std::string& out, std::string_view name, std::string_view type, std::string_view help,
                          std::string_view value) {
  append_metric_header(out, name, type, help);
  out += name;
  out += ' ';
  out += value;
  out += '\n';
}

// Appends a metric with one unlabelled integer sample.
inline void append_metric(std::string& out, std::string_view name, std::string_view type, std::string_view help,
                          uint64_t value) {
  append_metric(out, name, type, help, std::string_view(std::to_string(value)));
}

}  // namespace chat
