// edgefer's CPU thread pool: persistent workers that spin briefly after a job (consecutive kernel calls start
// without a wake-up) and then sleep on a condition variable. Survives fork(): a child process starts a fresh
// pool on its first parallel call.
#include "thread_pool.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
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

class Pool {
 public:
  Pool() { start(default_threads()); }

  int threads() const { return nthreads_; }

  int resize(int n) {
    if (n < 1) n = default_threads();
    check_fork();
    std::lock_guard<std::mutex> run_lock(run_mu_);
    stop();
    start(n);
    return nthreads_;
  }

  void run(int64_t ntasks, const std::function<void(int64_t)>& fn) {
    if (ntasks <= 0) return;
    check_fork();
    if (ntasks == 1 || workers_->empty() || !run_mu_.try_lock()) {
      for (int64_t i = 0; i < ntasks; ++i) fn(i);
      return;
    }
    fn_ = &fn;
    ntasks_ = ntasks;
    next_.store(0, std::memory_order_relaxed);
    pending_.store(static_cast<int>(workers_->size()), std::memory_order_relaxed);
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
    run_mu_.unlock();
  }

 private:
  void start(int n) {
    nthreads_ = n;
    stop_flag_ = false;
    pid_ = current_pid();
    workers_ = new std::vector<std::thread>();
    const uint64_t gen = gen_.load(std::memory_order_acquire);  // workers wait for the generation after this
    for (int i = 1; i < n; ++i) workers_->emplace_back([this, gen] { loop(gen); });
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_flag_ = true;
      gen_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    for (auto& t : *workers_) t.join();
    delete workers_;
    workers_ = nullptr;
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
    workers_ = nullptr;  // leaked on purpose: joining or destroying threads of the parent is undefined
    new (&run_mu_) std::mutex();
    new (&mu_) std::mutex();
    new (&cv_) std::condition_variable();
    new (&done_cv_) std::condition_variable();
    start(nthreads_);
  }

  void work() {
    const auto& fn = *fn_;
    for (;;) {
      const int64_t i = next_.fetch_add(1, std::memory_order_relaxed);
      if (i >= ntasks_) break;
      fn(i);
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

  std::vector<std::thread>* workers_ = nullptr;
  int nthreads_ = 1;
  long pid_ = 0;
  bool stop_flag_ = false;
  std::mutex run_mu_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  std::atomic<uint64_t> gen_{0};
  const std::function<void(int64_t)>* fn_ = nullptr;
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
void call_task(void* fn, int64_t i) { (*static_cast<const std::function<void(int64_t)>*>(fn))(i); }
}  // namespace

void parallel_for(const ParallelFor* runner, int64_t ntasks, const std::function<void(int64_t)>& fn) {
  if (runner == nullptr) return parallel_for(ntasks, fn);
  if (ntasks <= 0) return;
  if (ntasks == 1) return fn(0);
  runner->run(runner->self, ntasks, &call_task, const_cast<void*>(static_cast<const void*>(&fn)));
}

int runner_threads(const ParallelFor* runner) {
  if (runner == nullptr) return pool_threads();
  return runner->threads >= 1 ? runner->threads : 1;
}

}  // namespace cpu

int set_num_threads(int n) { return cpu::pool().resize(n); }

int get_num_threads() { return cpu::pool().threads(); }

}  // namespace edgefer
