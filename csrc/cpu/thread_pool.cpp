// edgefer's CPU thread pool: persistent workers that spin briefly after a job (consecutive kernel calls start
// without a wake-up) and then sleep on a condition variable. Survives fork(): a child process starts a fresh
// pool on its first parallel call. A task that throws leaves it usable: the other tasks skip, every worker
// leaves the job, and only then does the caller rethrow the first exception. Resizing is all or nothing.
#include "thread_pool.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#include <unistd.h>
#endif

#include "edgefer/kernels.h"

namespace edgefer {
namespace cpu {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

int default_threads() {
  if (const char* env = std::getenv("EDGEFER_NUM_THREADS")) {
    const int n = std::atoi(env);
    if (n >= 1) return n;
  }
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n >= 1) return n;
  }
#endif
  const unsigned n = std::thread::hardware_concurrency();
  return n >= 1 ? static_cast<int>(n) : 1;
}

constexpr auto kSpin = std::chrono::microseconds(300);

// The first exception a job's tasks throw. Once one has, the other tasks check failed() and skip.
class FirstError {
 public:
  // In a catch block.
  void capture() noexcept {
    if (!failed_.exchange(true, std::memory_order_acq_rel)) error_ = std::current_exception();
  }
  bool failed() const { return failed_.load(std::memory_order_relaxed); }
  // Once every task has finished: rethrows the exception captured, if any.
  void rethrow_if_failed() const {
    if (failed_.load(std::memory_order_acquire)) std::rethrow_exception(error_);
  }

 private:
  std::atomic<bool> failed_{false};
  std::exception_ptr error_;
};

class Pool {
 public:
  Pool() : pid_(current_pid()) { start_if_possible(default_threads()); }

  int threads() const { return nthreads_.load(std::memory_order_relaxed); }

  int resize(int n) {
    if (n < 1) n = default_threads();
    check_fork();
    std::lock_guard<std::mutex> busy(run_mu_);
    const int before = threads();
    stop();
    try {
      start(n);
    } catch (...) {
      start_if_possible(before);
      throw;
    }
    return threads();
  }

  void run(int64_t ntasks, const std::function<void(int64_t)>& fn) {
    if (ntasks <= 0) return;
    if (ntasks == 1) return fn(0);
    check_fork();
    std::unique_lock<std::mutex> busy(run_mu_, std::try_to_lock);
    if (!busy.owns_lock() || workers_.empty()) {  // in use (another call, a nested one, a resize), or no workers
      for (int64_t i = 0; i < ntasks; ++i) fn(i);
      return;
    }
    FirstError error;
    fn_ = &fn;
    error_ = &error;
    ntasks_ = ntasks;
    next_.store(0, std::memory_order_relaxed);
    pending_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(mu_);
      gen_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    work();
    const auto t0 = std::chrono::steady_clock::now();
    int spins = 0;
    while (pending_.load(std::memory_order_acquire) != 0) {
      cpu_relax();
      if (++spins % 64 == 0 && std::chrono::steady_clock::now() - t0 > kSpin) {
        std::unique_lock<std::mutex> lock(mu_);
        done_cv_.wait(lock, [&] { return pending_.load(std::memory_order_acquire) == 0; });
        break;
      }
    }
    fn_ = nullptr;
    error_ = nullptr;
    busy.unlock();
    error.rethrow_if_failed();
  }

 private:
  // Starts n - 1 workers, all or none: when one cannot start, those started are stopped and the error rethrown.
  // Called holding run_mu_, or where no other thread can call (construction, a forked child).
  void start(int n) {
    const uint64_t gen = gen_.load(std::memory_order_acquire);  // workers wait for the generation after this
    try {
      workers_.reserve(n - 1);
      for (int i = 1; i < n; ++i) workers_.emplace_back([this, gen] { loop(gen); });
    } catch (...) {
      stop();
      throw;
    }
    nthreads_.store(n, std::memory_order_relaxed);
  }

  // start(n), or no workers when n threads cannot be had: the kernels then run in their callers.
  void start_if_possible(int n) noexcept {
    try {
      start(n);
    } catch (...) {
    }
  }

  // Stops and joins every worker. Called as start is.
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_flag_ = true;
      gen_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
    stop_flag_ = false;  // no worker is left to read it
    nthreads_.store(1, std::memory_order_relaxed);
  }

  static long current_pid() {
#if defined(__linux__)
    return static_cast<long>(getpid());
#else
    return 0;
#endif
  }

  // After fork() only the forking thread exists in the child: abandon (leak) the dead workers and start anew.
  void check_fork() {
    if (current_pid() == pid_) return;
    new (&workers_) std::vector<std::thread>();  // leaks the parent's: joining or destroying them is undefined
    new (&run_mu_) std::mutex();
    new (&mu_) std::mutex();
    new (&cv_) std::condition_variable();
    new (&done_cv_) std::condition_variable();
    pid_ = current_pid();
    stop_flag_ = false;
    const int n = threads();
    nthreads_.store(1, std::memory_order_relaxed);
    start_if_possible(n);
  }

  // Takes tasks until none is left or one has thrown; an exception is captured, never let out of here.
  void work() {
    const auto& fn = *fn_;
    FirstError& error = *error_;
    for (;;) {
      const int64_t i = next_.fetch_add(1, std::memory_order_relaxed);
      if (i >= ntasks_ || error.failed()) break;
      try {
        fn(i);
      } catch (...) {
        error.capture();
      }
    }
  }

  void loop(uint64_t seen) {
    for (;;) {
      const auto t0 = std::chrono::steady_clock::now();
      int spins = 0;
      while (gen_.load(std::memory_order_acquire) == seen) {
        cpu_relax();
        if (++spins % 64 == 0 && std::chrono::steady_clock::now() - t0 > kSpin) {
          std::unique_lock<std::mutex> lock(mu_);
          cv_.wait(lock, [&] { return gen_.load(std::memory_order_acquire) != seen; });
          break;
        }
      }
      seen = gen_.load(std::memory_order_acquire);
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_flag_) return;
      }
      work();
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(mu_);
        done_cv_.notify_one();
      }
    }
  }

  // workers_ and the job (fn_, error_, ntasks_) change only under run_mu_.
  std::vector<std::thread> workers_;
  std::atomic<int> nthreads_{1};
  long pid_;
  bool stop_flag_ = false;
  std::mutex run_mu_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  std::atomic<uint64_t> gen_{0};
  const std::function<void(int64_t)>* fn_ = nullptr;
  FirstError* error_ = nullptr;
  int64_t ntasks_ = 0;
  std::atomic<int64_t> next_{0};
  std::atomic<int> pending_{0};
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: workers must not be joined during static destruction
  return *p;
}

}  // namespace

void parallel_for(int64_t ntasks, const std::function<void(int64_t)>& fn) { pool().run(ntasks, fn); }

int pool_threads() { return pool().threads(); }

namespace {

struct RunnerJob {
  const std::function<void(int64_t)>* fn;
  FirstError error;
};

void run_runner_task(void* job, int64_t i) {
  auto* j = static_cast<RunnerJob*>(job);
  if (j->error.failed()) return;
  try {
    (*j->fn)(i);
  } catch (...) {
    j->error.capture();
  }
}

}  // namespace

void parallel_for(const ParallelFor* runner, int64_t ntasks, const std::function<void(int64_t)>& fn) {
  if (runner == nullptr) return parallel_for(ntasks, fn);
  if (ntasks <= 0) return;
  if (ntasks == 1) return fn(0);
  RunnerJob job{&fn, {}};
  runner->run(runner->self, ntasks, &run_runner_task, &job);
  job.error.rethrow_if_failed();
}

int runner_threads(const ParallelFor* runner) {
  if (runner == nullptr) return pool_threads();
  return runner->threads >= 1 ? runner->threads : 1;
}

}  // namespace cpu

int set_num_threads(int n) { return cpu::pool().resize(n); }

int get_num_threads() { return cpu::pool().threads(); }

}  // namespace edgefer
