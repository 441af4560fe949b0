// Errors on the data path are values: an ErrorCode for the exit status and one line of text
// naming the file, the tensor and the problem. The library never prints and never exits.
#pragma once

#include <cerrno>
#include <string>
#include <utility>
#include <variant>

namespace ms2vllm {

// Each code is one documented exit status of the ms2vllm command (tools/exit_codes.h).
enum class ErrorCode {
  kUsage,          // bad flags or flag values
  kInvalidInput,   // an input file is missing, unreadable or malformed
  kUnsupported,    // a valid input that cannot be converted as asked (SPEC 4)
  kOutput,         // the output cannot be written (directory, permissions, disk full)
  kResources,      // the machine ran out of memory, threads or open files
  kInterrupted,    // SIGINT / SIGTERM
  kVerifyFailed,   // `verify` found a difference
};

// errno values that say the machine, not the file, is the problem.
inline bool OutOfResources(int error) { return error == ENOMEM || error == EMFILE || error == ENFILE; }

struct Error {
  ErrorCode code;
  std::string message;
};

// A value or an Error. [[nodiscard]] so a failure is never dropped silently.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Error error) : state_(std::move(error)) {}     // NOLINT: implicit by design

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(state_); }
  const T& value() const& { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { return std::get<1>(state_); }
  Error&& take_error() { return std::get<1>(std::move(state_)); }

 private:
  std::variant<T, Error> state_;
};

struct Ok {};
using Status = Result<Ok>;

inline Error MakeError(ErrorCode code, std::string message) { return Error{code, std::move(message)}; }
inline Error InvalidInput(std::string message) { return MakeError(ErrorCode::kInvalidInput, std::move(message)); }
inline Error Unsupported(std::string message) { return MakeError(ErrorCode::kUnsupported, std::move(message)); }

}  // namespace ms2vllm

// Propagates an Error from an expression returning Result<T>/Status.
#define MS2VLLM_TRY(expr)                                  \
  do {                                                     \
    auto ms2vllm_try_result_ = (expr);                     \
    if (!ms2vllm_try_result_.ok()) return ms2vllm_try_result_.take_error(); \
  } while (0)

#define MS2VLLM_CONCAT_INNER(a, b) a##b
#define MS2VLLM_CONCAT(a, b) MS2VLLM_CONCAT_INNER(a, b)
// `MS2VLLM_ASSIGN_OR_RETURN(auto x, Expr())` declares x from a Result or returns its Error.
#define MS2VLLM_ASSIGN_OR_RETURN(decl, expr) \
  MS2VLLM_ASSIGN_OR_RETURN_IMPL(MS2VLLM_CONCAT(ms2vllm_result_, __LINE__), decl, expr)
#define MS2VLLM_ASSIGN_OR_RETURN_IMPL(tmp, decl, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return tmp.take_error();              \
  decl = std::move(tmp).value()
