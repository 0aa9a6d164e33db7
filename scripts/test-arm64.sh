#!/usr/bin/env bash
# ARM64 kernel parity under emulation (npm run test:arm64; test/native/arm64.test.ts runs it in CI).
#
#  1. Cross-compiles for aarch64 (aarch64-linux-gnu-g++): the kernels and the parity test binary
#     (native/test/*.cc, static, -O2, the dotprod / i8mm / fp16fml files with binding.gyp's -march), and the addon itself
#     from native/binding.gyp with npm's node-gyp (--arch=arm64, the arm64 conditions), so the arm64 addon is
#     proven to build and link (it cannot be loaded: there is no arm64 Node here).
#  2. Runs the parity binary under qemu-aarch64 once per CPU model, i.e. per feature level:
#       cortex-a53   base NEON               → levels: neon
#       neoverse-n1  + dotprod (and fp16)    → levels: neon neon_dotprod
#       max          + i8mm, fhm             → levels: neon neon_dotprod neon_i8mm (+ f16 on FMLAL at the upper two)
#     and checks that the binary detected exactly those levels (getauxval, as the addon does). qemu logs every
#     block it translates (-d in_asm), i.e. every instruction that ran at least once: the script counts the
#     sdot / smmla / fmla / fmlal(2) among them per model (by encoding: qemu's disassembler may print them as .byte).
#     Only max reports FEAT_FHM; the binary prints a skip line for the f16 FMLAL checks on the others.
#  3. Prints how often the vector instructions occur in the level-specific objects (sdot, smmla, fmla, fmlal).
# On an arm64 host (Linux, macOS) without the cross compiler it builds with c++ and runs the binary natively, once.
# `--icount` adds a table of dynamic instruction counts per weight × token of the matmul kernels (qemu -cpu max,
# one 64 × 2048 weight, T = 1 and 8, per format and level): not a timing, but it shows what each level saves.
#
# Installs g++-aarch64-linux-gnu and qemu-user-static with apt-get when they are missing and we are root;
# otherwise says what to install. Exit status: 0 when every kernel × level passed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

CXX=${AARCH64_CXX:-aarch64-linux-gnu-g++}
OBJDUMP=${AARCH64_OBJDUMP:-aarch64-linux-gnu-objdump}
qemu_bin() { command -v qemu-aarch64-static || command -v qemu-aarch64 || true; }
NATIVE=0
case "$(uname -m)" in  # an arm64 host (Linux aarch64, macOS arm64) without the cross compiler: build natively
  aarch64 | arm64) command -v "$CXX" >/dev/null || NATIVE=1 CXX=${AARCH64_CXX:-c++} OBJDUMP=${AARCH64_OBJDUMP:-objdump} ;;
esac

if [ $NATIVE = 0 ] && { ! command -v "$CXX" >/dev/null || [ -z "$(qemu_bin)" ]; }; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test-arm64: installing g++-aarch64-linux-gnu qemu-user-static"
    apt-get update -qq && apt-get install -y -qq --no-install-recommends g++-aarch64-linux-gnu qemu-user-static >/dev/null
  else
    echo "test-arm64: needs $CXX and qemu-aarch64(-static): apt-get install g++-aarch64-linux-gnu qemu-user-static" >&2
    exit 2
  fi
fi
QEMU=$(qemu_bin)

OUT=$(mktemp -d "${TMPDIR:-/tmp}/xverse-arm64.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}

# Node / node-addon-api headers for addon.cc: npm's nodedir (as scripts/build-native.mjs), next to this node
# binary, or /usr/include/node.
NODE_INC=""
for d in "${npm_config_nodedir:+$npm_config_nodedir/include/node}" "$(dirname "$(dirname "$(command -v node)")")/include/node" /usr/include/node; do
  if [ -f "$d/node_api.h" ]; then NODE_INC=$d; break; fi
done
NAPI_INC=$(node -p "require('node-addon-api').include_dir" 2>/dev/null || true)

FLAGS=(-std=c++17 -O2 -fno-math-errno -Wall -Wno-unused-function -Wno-uninitialized -pthread)
KERNELS=()
for f in native/src/*.cc; do
  case "$f" in native/src/addon.cc | native/src/mmap.cc) ;; *) KERNELS+=("$f") ;; esac
done
KERNELS+=(native/src/arm/*.cc)
TESTS=(native/test/*.cc)

# Vector instructions in an object file (the disassembler's mnemonics).
count_in() { "$OBJDUMP" -d "$1" | grep -cE "^\s+[0-9a-f]+:\s+[0-9a-f]{8}\s+$2\s" || true; }
count() { count_in "$@"; }

# One object per source, $JOBS at a time (xargs -P: also on macOS's bash 3). The dotprod / i8mm files get the
# -march binding.gyp gives them.
obj_for() { echo "$OUT/$(echo "${1#native/}" | tr / _).o"; }
start=$(date +%s)
printf '%s\n' "${KERNELS[@]}" "${TESTS[@]}" | xargs -P "$JOBS" -I{} sh -c '
  f=$1; o=$2/$(echo "${f#native/}" | tr / _).o
  case "$f" in
    */legacy_dot.cc | */kquants_dot.cc | */intq_dot.cc) m=-march=armv8.2-a+dotprod ;;
    */legacy_i8mm.cc | */kquants_i8mm.cc | */intq_i8mm.cc) m=-march=armv8.2-a+dotprod+i8mm ;;
    */matmul_fhm.cc) m=-march=armv8.2-a+fp16fml ;;
    *) m= ;;
  esac
  exec $3 $4 $m -c "$f" -o "$o"' _ {} "$OUT" "$CXX" "${FLAGS[*]}"
kobjs=() tobjs=()
for f in "${KERNELS[@]}"; do kobjs+=("$(obj_for "$f")"); done
for f in "${TESTS[@]}"; do tobjs+=("$(obj_for "$f")"); done
STATIC=-static  # (qemu-user runs it without the aarch64 sysroot; macOS has no static libc)
[ "$(uname)" = Darwin ] && STATIC=""
"$CXX" $STATIC -pthread -o "$OUT/parity" "${kobjs[@]}" "${tobjs[@]}"
echo "test-arm64: parity binary built ($(( $(date +%s) - start )) s)"

# The addon from native/binding.gyp, cross-built by the node-gyp that ships with npm (as scripts/build-native.mjs
# finds it) with the arm64 conditions; only compiled and linked, since there is no arm64 Node to load it.
GYP=""
for g in "${npm_config_node_gyp:-}" "$(dirname "$(dirname "$(command -v node)")")/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"; do
  if [ -n "$g" ] && [ -f "$g" ]; then GYP=$g; break; fi
done
if [ $NATIVE = 0 ] && [ -n "$GYP" ] && [ -n "$NODE_INC" ] && [ -n "$NAPI_INC" ]; then
  mkdir -p "$OUT/addon" && cp -r native/binding.gyp native/src "$OUT/addon/"
  if ! (cd "$OUT/addon" && CC=${CXX%g++}gcc CXX=$CXX LINK=$CXX AR=${CXX%g++}ar NODE_PATH="$ROOT/node_modules" \
        node "$GYP" rebuild --arch=arm64 -j "$JOBS" --nodedir="$(dirname "$(dirname "$NODE_INC")")" >"$OUT/gyp.log" 2>&1); then
    tail -30 "$OUT/gyp.log" >&2
    echo "test-arm64: node-gyp could not build the addon for arm64" >&2
    exit 1
  fi
  ADDON="$OUT/addon/build/Release/xverse_native.node"
  echo "test-arm64: addon built by node-gyp for arm64 ($(stat -c %s "$ADDON") bytes; sdot $(count_in "$ADDON" sdot), smmla $(count_in "$ADDON" smmla), fmlal $(count_in "$ADDON" 'fmlal2?'))"
elif [ $NATIVE = 0 ]; then
  echo "test-arm64: node-gyp, the Node headers or node-addon-api not found: the addon was not cross-built" >&2
  exit 2
fi

echo "test-arm64: instructions — legacy_neon: smull $(count "$OUT/src_arm_legacy_neon.cc.o" 'smull2?') sadalp $(count "$OUT/src_arm_legacy_neon.cc.o" sadalp) sdot $(count "$OUT/src_arm_legacy_neon.cc.o" sdot);" \
  "legacy_dot: sdot $(count "$OUT/src_arm_legacy_dot.cc.o" sdot); legacy_i8mm: smmla $(count "$OUT/src_arm_legacy_i8mm.cc.o" smmla);" \
  "kquants_dot: sdot $(count "$OUT/src_arm_kquants_dot.cc.o" sdot); kquants_i8mm: smmla $(count "$OUT/src_arm_kquants_i8mm.cc.o" smmla); matmul_f: fmla $(count "$OUT/src_arm_matmul_f.cc.o" fmla);" \
  "intq_dot: sdot $(count "$OUT/src_arm_intq_dot.cc.o" sdot); intq_i8mm: smmla $(count "$OUT/src_arm_intq_i8mm.cc.o" smmla);" \
  "matmul_fhm: fmlal $(count "$OUT/src_arm_matmul_fhm.cc.o" 'fmlal2?'); kv_neon: fmla $(count "$OUT/src_arm_kv_neon.cc.o" fmla)"

# sdot / smmla / fmla among the instructions qemu translated (each ran at least once).
executed() {
  perl -ne 'if (/^0x[0-9a-f]+:\s+([0-9a-f]{8})\s/) { my $i = hex($1);
      $s++ if ($i & 0xffe0fc00) == 0x4e809400 || ($i & 0xffc0f400) == 0x4f80e000;  # sdot (vector, by element)
      $m++ if ($i & 0xffe0fc00) == 0x4e80a400;                                     # smmla
      $f++ if ($i & 0xbfa0fc00) == 0x0e20cc00 || ($i & 0xbf80f400) == 0x0f801000;  # fmla .4s/.2s, by element
      $l++ if ($i & 0xbfe0fc00) == 0x0e20ec00 || ($i & 0xbfe0fc00) == 0x2e20cc00; }  # fmlal, fmlal2 (vector)
    END { printf "sdot %d smmla %d fmla %d fmlal %d\n", $s, $m, $f, $l }' "$1"
}

# Instructions per weight × token of a format's kernels (the xv::arm functions qemu ran, less the activation
# quantizer / the f16 rounding and the dispatch), from the translation
# log (in_asm: each block's length) and the execution log (exec,nochain: every block run).
icount() {  # format T level
  "$QEMU" -cpu max -d in_asm,exec,nochain -D "$OUT/exec.log" "$OUT/parity" --run "$1" 64 2048 "$2" "$3" >/dev/null
  perl -ne 'if (/^IN:/) { $pc = undef; $n = 0; next }
    if (/^0x([0-9a-f]+):\s+[0-9a-f]{8}\s/) { $pc //= hex($1); $len{$pc} = ++$n; next }
    if (/^Trace \d+: \S+ \[[0-9a-f]+\/([0-9a-f]+)\/[^\]]*\]\s*(\S*)/) { my ($p, $f) = ($1, $2); $c += $len{hex($p)} if $f =~ /3arm/ && $f !~ /quantize|round_f16|3arm6matmul/ }
    END { printf "%.2f", $c / (64 * 2048 * '"$2"') }' "$OUT/exec.log"
}
if [ "${1:-}" = --icount ] && [ $NATIVE = 0 ]; then
  printf '%-10s %-18s %-18s %-18s\n' "format" "neon T=1 / T=8" "neon_dotprod" "neon_i8mm"
  for f in f16 q8_row q4_group q4_0 q8_0 q5_1 q4_k q5_k q6_k; do
    line=$(printf '%-10s' "$f")
    for lv in neon neon_dotprod neon_i8mm; do line="$line $(printf '%-18s' "$(icount $f 1 $lv) / $(icount $f 8 $lv)")"; done
    echo "$line"
  done
fi

status=0
if [ $NATIVE = 1 ]; then
  echo "== native $(uname -m)"
  "$OUT/parity" || status=1
  echo "test-arm64: $([ $status = 0 ] && echo passed || echo FAILED) in $(( $(date +%s) - start )) s"
  exit $status
fi
for spec in "cortex-a53:neon" "neoverse-n1:neon neon_dotprod" "max:neon neon_dotprod neon_i8mm"; do
  cpu=${spec%%:*} want=${spec#*:}
  echo "== qemu -cpu $cpu (expect: $want)"
  set +e
  log=$("$QEMU" -cpu "$cpu" -d in_asm -D "$OUT/in_asm.log" "$OUT/parity" 2>&1)
  rc=$?
  set -e
  echo "$log"
  echo "executed ($cpu): $(executed "$OUT/in_asm.log")"
  got=$(echo "$log" | sed -n 's/^levels: *//p')
  if [ "$got" != "$want" ]; then
    echo "test-arm64: -cpu $cpu detected levels '$got', expected '$want'" >&2
    status=1
  fi
  [ $rc = 0 ] || status=1
done
echo "test-arm64: $([ $status = 0 ] && echo passed || echo FAILED) in $(( $(date +%s) - start )) s"
exit $status
