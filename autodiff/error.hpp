// gg::Error and its kinds: every failure the library reports is one of these exceptions, with the
// context (op, shapes, file, line) in its message.
#pragma once

#include <stdexcept>
#include <string>

namespace gg {

/// Base of every exception gradgraph throws.
class Error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// Operands whose shapes do not fit the operation; the message names the op and both shapes.
class ShapeError : public Error {
public:
  using Error::Error;
};

/// A value outside what an operation or option accepts (negative size, bad axis, eps < 0, ...).
class ValueError : public Error {
public:
  using Error::Error;
};

/// A NaN or an infinity found by anomaly detection (gg::DetectAnomaly): the message names the op,
/// the names on its path through the graph, and its inputs' shapes and values.
class AnomalyError : public ValueError {
public:
  using ValueError::ValueError;
};

/// A file that cannot be opened, read or written.
class IOError : public Error {
public:
  using Error::Error;
};

/// Data whose content is malformed (CSV, IDX, safetensors); the message says file, line, column.
class FormatError : public Error {
public:
  using Error::Error;
};

/// An API used in a way its contract forbids (backward twice without retain_graph, ...).
class UsageError : public Error {
public:
  using Error::Error;
};

} // namespace gg
