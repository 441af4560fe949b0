// Runs the built ms2vllm command (MS2VLLM_BINARY) as a child process with its stdout and
// stderr captured through pipes (pipes, not files: a file-size limit set for the child must
// not stop it reporting its error). Used by the hostile-input and interruption tests.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "tests/test_support.h"

namespace ms2vllm::testing {

struct ChildOutcome {
  bool exited = false;  // false: killed by a signal, or never reaped
  int exit_code = -1;
  int signal = 0;       // the signal that ended it, when !exited
  bool timed_out = false;
  std::string out, err;
};

class ChildProcess {
 public:
  // Starts ms2vllm (Ms2vllmArgv) with `args`. `in_child` runs in the child between fork and exec
  // (resource limits, capabilities); it must only make system calls, and may _exit(126).
  ChildProcess(const std::vector<std::string>& args, const std::function<void()>& in_child = {}) {
    int out_pipe[2], err_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) return;
    std::vector<std::string> argv_storage = Ms2vllmArgv();
    argv_storage.insert(argv_storage.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& arg : argv_storage) argv.push_back(arg.data());
    argv.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      const int null_fd = ::open("/dev/null", O_RDONLY);
      ::dup2(null_fd, STDIN_FILENO);
      ::dup2(out_pipe[1], STDOUT_FILENO);
      ::dup2(err_pipe[1], STDERR_FILENO);
      // The test runner may ignore or block signals; the child starts from the defaults.
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      for (int signal : {SIGINT, SIGTERM, SIGHUP}) ::signal(signal, SIG_DFL);
      if (in_child) in_child();
      ::execv(argv[0], argv.data());
      _exit(127);
    }
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    out_fd_ = out_pipe[0];
    err_fd_ = err_pipe[0];
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      Wait();
    }
    if (out_fd_ >= 0) ::close(out_fd_);
    if (err_fd_ >= 0) ::close(err_fd_);
  }

  pid_t pid() const { return pid_; }
  bool started() const { return pid_ > 0; }

  // True once the child has ended (reaps it without blocking).
  bool Ended() {
    if (reaped_) return true;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) Record(status);
    return reaped_;
  }

  void Signal(int signal) { ::kill(pid_, signal); }

  // Waits for the child to end and collects its output. A child still running after
  // `deadline` (a hang, never a timing check) is killed and reported as timed out.
  ChildOutcome Wait(std::chrono::seconds deadline = std::chrono::seconds(300)) {
    const auto give_up = std::chrono::steady_clock::now() + deadline;
    while (out_fd_ >= 0 || err_fd_ >= 0) {
      pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
      const int ready = ::poll(fds, 2, 100);
      if (ready < 0 && errno != EINTR) break;
      Drain(fds[0], out_fd_, outcome_.out);
      Drain(fds[1], err_fd_, outcome_.err);
      if (std::chrono::steady_clock::now() > give_up && !reaped_) {
        outcome_.timed_out = true;
        ::kill(pid_, SIGKILL);
        break;
      }
    }
    if (!reaped_) {
      int status = 0;
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      Record(status);
    }
    return outcome_;
  }

 private:
  void Record(int status) {
    reaped_ = true;
    outcome_.exited = WIFEXITED(status);
    outcome_.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    outcome_.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  }

  static void Drain(const pollfd& polled, int& fd, std::string& sink) {
    if (fd < 0 || polled.revents == 0) return;
    char buffer[4096];
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n > 0) {
      sink.append(buffer, static_cast<size_t>(n));
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
      ::close(fd);
      fd = -1;
    }
  }

  pid_t pid_ = -1;
  int out_fd_ = -1, err_fd_ = -1;
  bool reaped_ = false;
  ChildOutcome outcome_;
};

// Runs the command to its end.
inline ChildOutcome RunBinary(const std::vector<std::string>& args, const std::function<void()>& in_child = {}) {
  ChildProcess child(args, in_child);
  if (!child.started()) return {};
  return child.Wait();
}

}  // namespace ms2vllm::testing
