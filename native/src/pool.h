// A small persistent thread pool. One pool per Node environment (main thread or worker), so two workers never
// share workers or scratch. Work is handed out as chunks of an index range through an atomic counter, so a thread
// that gets descheduled (the machine is shared) does not hold up the others for long.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace xv {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return nthreads_; }
  // Stops the workers and starts `threads` - 1 new ones (the calling thread is always worker 0).
  void resize(int threads);

  // Calls fn(begin, end, tid) for consecutive chunks of [0, n) of size `chunk` (the last may be shorter), spread
  // over the pool; returns when all are done. The caller's thread takes part. Not reentrant.
  using RangeFn = std::function<void(int64_t, int64_t, int)>;
  void parallel_for(int64_t n, int64_t chunk, const RangeFn& fn);

 private:
  void start(int threads);
  void stop();
  void worker(int tid, uint64_t start_generation);
  void run_chunks(int tid);

  int nthreads_ = 1;
  std::vector<std::thread> workers_;

  // The current job; written by the caller before bumping generation_, read by workers after seeing the bump.
  const RangeFn* fn_ = nullptr;
  int64_t n_ = 0, chunk_ = 1;
  std::atomic<int64_t> next_{0};
  std::atomic<bool> open_{false};  // the current job still accepts workers
  std::atomic<int> active_{0};     // workers (not counting the caller) inside a job

  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> quit_{false};
  std::atomic<int> sleepers_{0};
  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace xv
