// Parity of the small ops (RMSNorm, RoPE, SiLU·mul, add) and of the paged KV kernels (kvWrite: the stored bytes
// must be identical; attention: 1e-5) at a level against the scalar kernels.
#include <cstdio>
#include <cstring>

#include "parity.h"

namespace xv {
namespace {

std::vector<float> rand_vec(Rng& rng, int64_t n, float amp) {
  std::vector<float> v(static_cast<size_t>(n));
  for (float& f : v) f = rng.uniform(-amp, amp);
  return v;
}

std::string shape(std::initializer_list<int64_t> dims) {
  std::string s = "[";
  for (int64_t d : dims) s += (s.size() > 1 ? ", " : "") + std::to_string(d);
  return s + "]";
}

}  // namespace

void run_ops(const Level& lv, Report& rep) {
  Rng rng(2);
  const bool arm = lv.isa >= Isa::Neon;
  if (arm) {  // x86 has one RMSNorm / RoPE / add for every level (ops.cc): nothing to compare there
    for (auto [T, dim] : {std::pair<int64_t, int64_t>{1, 37}, {3, 4096}, {17, 130}}) {
      const std::vector<float> x = rand_vec(rng, T * dim, 3.f), w = rand_vec(rng, dim, 2.f);
      std::vector<float> ref(x.size()), got(x.size());
      rmsnorm(ref.data(), x.data(), w.data(), T, dim, 1e-6f);
      arm::rmsnorm(got.data(), x.data(), w.data(), T, dim, 1e-6f);
      rep.add("rmsnorm", lv, norm_err(got.data(), ref.data(), got.size()), shape({T, dim}));
    }
    for (auto [T, nh, hd] : {std::tuple<int64_t, int64_t, int64_t>{1, 3, 18}, {5, 2, 64}, {3, 4, 6}}) {
      std::vector<float> ref = rand_vec(rng, T * nh * hd, 2.f), got = ref;
      const std::vector<float> c = rand_vec(rng, T * hd / 2, 1.f), s = rand_vec(rng, T * hd / 2, 1.f);
      rope(ref.data(), T, nh, hd, c.data(), s.data());
      arm::rope(got.data(), T, nh, hd, c.data(), s.data());
      rep.add("rope", lv, norm_err(got.data(), ref.data(), got.size()), shape({T, nh, hd}));
    }
    for (int64_t n : {5, 1001}) {
      std::vector<float> ref = rand_vec(rng, n, 5.f), got = ref;
      const std::vector<float> x = rand_vec(rng, n, 5.f);
      add_in_place(ref.data(), x.data(), n);
      arm::add_in_place(got.data(), x.data(), n);
      rep.add("add", lv, norm_err(got.data(), ref.data(), got.size()), shape({n}));
    }
  }
  for (int64_t n : {1, 7, 1000}) {
    std::vector<float> ref = rand_vec(rng, n, 12.f), got;
    if (n == 1000) ref[3] = 95.f, ref[4] = -95.f, ref[5] = 0.f, ref[6] = -88.5f;  // exp's clamps
    got = ref;
    const std::vector<float> up = rand_vec(rng, n, 2.f);
    silu_mul(ref.data(), up.data(), 0, n, Isa::Scalar);
    if (arm) arm::silu_mul(got.data(), up.data(), 0, n);
    else silu_mul(got.data(), up.data(), 0, n, lv.isa);
    rep.add("silu_mul", lv, norm_err(got.data(), ref.data(), got.size()), shape({n}));
  }
}

namespace {

// A KV cache of `layers` layers over shuffled physical blocks in segments of 3 blocks, one layout for all runs.
struct Cache {
  PagedKv kv{};
  std::vector<std::vector<uint32_t>> seg;  // uint32 storage: 4-byte aligned
  std::vector<uint8_t*> ptr;
  std::vector<int32_t> table;

  Cache(KvType type, int64_t hd, int64_t maxTokens, Rng& rng) {
    kv.type = type, kv.nKvHeads = 2, kv.headDim = hd, kv.blockSize = 5, kv.group = hd == 18 ? 6 : 32;
    kv.blocksPerSegment = 3, kv.layer = 1;
    const int64_t n = kv.nKvHeads * kv.blockSize * hd;
    int64_t need = type == KvType::F32 ? 4 * n : type == KvType::F16 ? 2 * n : 0;
    if (type == KvType::Q8) kv.scaleOffset = (n + 1) / 2 * 2, need = kv.scaleOffset + 2 * (n / kv.group);
    kv.regionBytes = (need + 3) / 4 * 4;
    kv.blockBytes = 2 * 2 * kv.regionBytes;  // two layers
    const int64_t blocks = (maxTokens + kv.blockSize - 1) / kv.blockSize, phys = blocks + 2;
    std::vector<int32_t> ids(static_cast<size_t>(phys));
    for (int64_t i = 0; i < phys; i++) ids[static_cast<size_t>(i)] = static_cast<int32_t>(i);
    for (int64_t i = phys - 1; i > 0; i--) std::swap(ids[static_cast<size_t>(i)], ids[rng.next() % (i + 1)]);
    table.assign(ids.begin(), ids.begin() + blocks);
    const int64_t nseg = (phys + 2) / 3;
    seg.assign(static_cast<size_t>(nseg), std::vector<uint32_t>(static_cast<size_t>(3 * kv.blockBytes / 4), 0));
    for (auto& s : seg) ptr.push_back(reinterpret_cast<uint8_t*>(s.data()));
    kv.segs = ptr.data(), kv.table = table.data();
  }
  bool same_bytes(const Cache& o) const { return seg == o.seg; }
};

}  // namespace

void run_kv(const Level& lv, Report& rep) {
  Rng rng(3);
  ThreadPool pool(2);
  const char* tname[] = {"f32", "f16", "q8_0"};
  const int64_t nHeads = 4;  // 2 query heads per kv head
  for (KvType type : {KvType::F32, KvType::F16, KvType::Q8}) {
    const std::string tn = tname[static_cast<int>(type)];
    for (int64_t hd : {18, 64}) {
      // (past, T): prefill, prefill over several 32-key chunks, a chunk after a prefix, decode, long decode
      for (auto [past, T] : {std::pair<int64_t, int64_t>{0, 11}, {0, 40}, {9, 3}, {20, 1}, {70, 1}}) {
        const int64_t S = past + T, width = 2 * hd;
        Cache ref(type, hd, S, rng), got(type, hd, S, rng);
        got.table = ref.table, got.kv.table = got.table.data();
        const std::vector<float> k = rand_vec(rng, S * width, 2.f), v = rand_vec(rng, S * width, 2.f);
        // stored in two calls (the prefix, then the new tokens), as a server does
        for (auto [s0, n] : {std::pair<int64_t, int64_t>{0, past}, {past, T}}) {
          if (n == 0) continue;
          kv_write(ref.kv, k.data() + s0 * width, v.data() + s0 * width, s0, n, Isa::Scalar, pool);
          kv_write(got.kv, k.data() + s0 * width, v.data() + s0 * width, s0, n, lv.isa, pool);
        }
        const std::string what = "hd " + std::to_string(hd) + " past " + std::to_string(past) + " T " + std::to_string(T);
        rep.add_exact("kv_write." + tn, lv, got.same_bytes(ref), what);
        const std::vector<float> q = rand_vec(rng, T * nHeads * hd, 1.f);
        std::vector<float> o1(q.size()), o2(q.size(), NAN);
        KvScratch s1, s2;
        paged_attention(ref.kv, PagedAttnArgs{o1.data(), q.data(), T, past, nHeads, 1.f / std::sqrt(float(hd))}, Isa::Scalar, pool, s1);
        paged_attention(ref.kv, PagedAttnArgs{o2.data(), q.data(), T, past, nHeads, 1.f / std::sqrt(float(hd))}, lv.isa, pool, s2);
        rep.add("attention." + tn, lv, norm_err(o2.data(), o1.data(), o1.size()), what);
      }
    }
    // Special values: f16 zero, subnormal, overflow to ∞, NaN, the largest finite half, a round-up to ∞.
    Cache ref(type, 18, 5, rng), got(type, 18, 5, rng);
    got.table = ref.table, got.kv.table = got.table.data();
    std::vector<float> k = rand_vec(rng, 5 * 36, 1.f), v = k;
    const float special[] = {0.f, -2.5e-8f, 70000.f, -1e-6f, NAN, 65504.f, 65520.f, 1e-7f, -0.f};
    for (size_t i = 0; i < sizeof special / sizeof *special; i++) k[i] = special[i];
    if (type == KvType::Q8) k[4] = 0.f;  // q8_0 of a NaN group is not defined by the reference
    kv_write(ref.kv, k.data(), v.data(), 0, 5, Isa::Scalar, pool);
    kv_write(got.kv, k.data(), v.data(), 0, 5, lv.isa, pool);
    rep.add_exact("kv_write." + tn, lv, got.same_bytes(ref), "special values");
  }
}

}  // namespace xv
