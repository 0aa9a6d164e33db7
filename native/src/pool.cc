#include "pool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define XV_PAUSE() _mm_pause()
#else
#define XV_PAUSE() ((void)0)
#endif

namespace xv {

// Spin this many rounds (~0.1 ms) before sleeping. Decode issues a few hundred parallel_for calls per token, a
// few microseconds apart, so a short spin avoids a futex wake-up each time; sleeping after that keeps an idle
// server, or a machine shared with other work, from losing cores to spinning.
static constexpr int kSpinRounds = 4000;

ThreadPool::ThreadPool(int threads) { start(threads); }
ThreadPool::~ThreadPool() { stop(); }

void ThreadPool::resize(int threads) {
  if (threads < 1) threads = 1;
  if (threads == nthreads_) return;
  stop();
  start(threads);
}

void ThreadPool::start(int threads) {
  nthreads_ = threads < 1 ? 1 : threads;
  quit_.store(false);
  // Workers start from the generation current now; one read inside the thread could miss a job posted before
  // the thread got scheduled, and the caller would wait for it forever.
  const uint64_t gen = generation_.load();
  for (int t = 1; t < nthreads_; t++) workers_.emplace_back([this, t, gen] { worker(t, gen); });
}

void ThreadPool::stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    quit_.store(true);
    generation_.fetch_add(1);
  }
  cv_.notify_all();
  for (auto& w : workers_) w.join();
  workers_.clear();
  nthreads_ = 1;
}

void ThreadPool::run_chunks(int tid) {
  for (;;) {
    int64_t c = next_.fetch_add(1, std::memory_order_relaxed);
    int64_t b = c * chunk_;
    if (b >= n_) break;
    int64_t e = b + chunk_ < n_ ? b + chunk_ : n_;
    (*fn_)(b, e, tid);
  }
}

void ThreadPool::worker(int tid, uint64_t seen) {
  for (;;) {
    // Wait for a new generation: spin first, then sleep on the condition variable.
    uint64_t g;
    int spins = 0;
    while ((g = generation_.load(std::memory_order_acquire)) == seen) {
      if (++spins < kSpinRounds) {
        XV_PAUSE();
        continue;
      }
      std::unique_lock<std::mutex> lk(mu_);
      sleepers_.fetch_add(1);
      cv_.wait(lk, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      sleepers_.fetch_sub(1);
      spins = 0;
    }
    seen = g;
    if (quit_.load()) return;
    // Join the job only while it is open. The caller closes it once every chunk is taken, so a worker that
    // was descheduled before it got here (a shared machine) costs the caller nothing; one that joined is waited
    // for. seq_cst on both sides: either the caller sees our increment, or we see the job closed.
    active_.fetch_add(1, std::memory_order_seq_cst);
    if (open_.load(std::memory_order_seq_cst)) run_chunks(tid);
    active_.fetch_sub(1, std::memory_order_seq_cst);
  }
}

void ThreadPool::parallel_for(int64_t n, int64_t chunk, const RangeFn& fn) {
  if (n <= 0) return;
  if (chunk < 1) chunk = 1;
  if (nthreads_ == 1 || n <= chunk) {
    fn(0, n, 0);
    return;
  }
  fn_ = &fn;
  n_ = n;
  chunk_ = chunk;
  next_.store(0, std::memory_order_relaxed);
  open_.store(true, std::memory_order_seq_cst);  // publishes fn_, n_, chunk_, next_ to workers that join
  {
    // Bumping under the lock pairs with the predicate check in cv_.wait, so a worker about to sleep cannot
    // miss this generation.
    std::lock_guard<std::mutex> lk(mu_);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  if (sleepers_.load() > 0) cv_.notify_all();
  run_chunks(0);
  // Every chunk is taken: close the job, then wait for the workers that joined to finish theirs. One that was
  // descheduled mid-chunk still holds us up; after a while, yield the core to it.
  open_.store(false, std::memory_order_seq_cst);
  for (int spins = 0; active_.load(std::memory_order_seq_cst) != 0; spins++) {
    if (spins < kSpinRounds) XV_PAUSE();
    else std::this_thread::yield();
  }
  fn_ = nullptr;
}

}  // namespace xv
