#!/usr/bin/env bash
# ARM64 kernel parity under emulation (npm run test:arm64; test/native/arm64.test.ts runs it in CI).
#
#  1. Cross-compiles every native source for aarch64 (aarch64-linux-gnu-g++, -O2): the kernels, the parity test
#     binary (native/test/*.cc) and the addon's own files (addon.cc, mmap.cc, with the Node headers), and links
#     both the static parity binary and the addon (xverse_native.node, N-API symbols left to Node), so the arm64
#     addon is proven to build.
#  2. Runs the parity binary under qemu-aarch64 once per CPU model, i.e. per feature level:
#       cortex-a53   base NEON               → levels: neon
#       neoverse-n1  + dotprod (and fp16)    → levels: neon neon_dotprod
#       max          + i8mm                  → levels: neon neon_dotprod neon_i8mm
#     and checks that the binary detected exactly those levels (getauxval, as the addon does). qemu logs every
#     block it translates (-d in_asm), i.e. every instruction that ran at least once: the script counts the
#     sdot / smmla / fmla among them per model (by encoding: qemu's disassembler may print them as .byte).
#  3. Prints how often the vector instructions occur in the level-specific objects (sdot, smmla, fmla).
# On an arm64 host without the cross compiler it builds with g++ and runs the binary natively, once.
#
# Installs g++-aarch64-linux-gnu and qemu-user-static with apt-get when they are missing and we are root;
# otherwise says what to install. Exit status: 0 when every kernel × level passed.
set -euo pipefail
cd "$(dirname "$0")/.."

CXX=${AARCH64_CXX:-aarch64-linux-gnu-g++}
OBJDUMP=${AARCH64_OBJDUMP:-aarch64-linux-gnu-objdump}
qemu_bin() { command -v qemu-aarch64-static || command -v qemu-aarch64 || true; }
NATIVE=0
if [ "$(uname -m)" = aarch64 ] && ! command -v "$CXX" >/dev/null; then
  NATIVE=1 CXX=${AARCH64_CXX:-g++} OBJDUMP=${AARCH64_OBJDUMP:-objdump}
fi

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

# Node / node-addon-api headers for addon.cc: next to this node binary, or /usr/include/node.
NODE_INC=""
for d in "$(dirname "$(dirname "$(command -v node)")")/include/node" /usr/include/node; do
  if [ -f "$d/node_api.h" ]; then NODE_INC=$d; break; fi
done
NAPI_INC=$(node -p "require('node-addon-api').include_dir" 2>/dev/null || true)

FLAGS=(-std=c++17 -O2 -fPIC -fno-math-errno -Wall -Wno-unused-function -Wno-uninitialized -pthread)
KERNELS=()
for f in native/src/*.cc; do
  case "$f" in native/src/addon.cc | native/src/mmap.cc) ;; *) KERNELS+=("$f") ;; esac
done
KERNELS+=(native/src/arm/*.cc)
TESTS=(native/test/*.cc)

# One object per source, $JOBS at a time (kernel objects serve both the parity binary and the addon).
compile_one() {  # src obj [extra flags…]
  local src=$1 obj=$2
  shift 2
  "$CXX" "${FLAGS[@]}" "$@" -c "$src" -o "$obj"
}
export CXX FLAGS_STR="${FLAGS[*]}"
start=$(date +%s)
{
  for f in "${KERNELS[@]}" "${TESTS[@]}"; do
    printf '%s\0%s\0' "$f" "$OUT/$(echo "${f#native/}" | tr / _).o"
  done
} | xargs -0 -n 2 -P "$JOBS" bash -c 'read -ra F <<<"$FLAGS_STR"; "$CXX" "${F[@]}" -c "$0" -o "$1"'
kobjs=()
for f in "${KERNELS[@]}"; do kobjs+=("$OUT/$(echo "${f#native/}" | tr / _).o"); done
tobjs=()
for f in "${TESTS[@]}"; do tobjs+=("$OUT/$(echo "${f#native/}" | tr / _).o"); done
"$CXX" -static -pthread -o "$OUT/parity" "${kobjs[@]}" "${tobjs[@]}"
echo "test-arm64: parity binary built ($(( $(date +%s) - start )) s)"

# The addon: addon.cc + mmap.cc with the N-API headers, linked with the same kernel objects.
if [ -n "$NODE_INC" ] && [ -n "$NAPI_INC" ]; then
  ADDON_DEFS=(-DNAPI_VERSION=8 -DNAPI_CPP_EXCEPTIONS -DNODE_ADDON_API_DISABLE_DEPRECATED -DNODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS)
  for f in addon mmap; do
    compile_one "native/src/$f.cc" "$OUT/addon_$f.o" "${ADDON_DEFS[@]}" -I"$NODE_INC" -I"$NAPI_INC" &
  done
  wait
  "$CXX" -shared -pthread -o "$OUT/xverse_native.node" "$OUT/addon_addon.o" "$OUT/addon_mmap.o" "${kobjs[@]}"
  echo "test-arm64: addon linked for aarch64 ($(stat -c %s "$OUT/xverse_native.node") bytes)"
else
  echo "test-arm64: Node or node-addon-api headers not found: addon.cc not cross-compiled" >&2
  exit 2
fi

# Vector instructions in the level-specific objects (the generated inner loops use them).
count() { "$OBJDUMP" -d "$1" | grep -cE "^\s+[0-9a-f]+:\s+[0-9a-f]{8}\s+$2\s" || true; }
echo "test-arm64: instructions — legacy_neon: smull $(count "$OUT/src_arm_legacy_neon.cc.o" 'smull2?') sadalp $(count "$OUT/src_arm_legacy_neon.cc.o" sadalp) sdot $(count "$OUT/src_arm_legacy_neon.cc.o" sdot);" \
  "legacy_dot: sdot $(count "$OUT/src_arm_legacy_dot.cc.o" sdot); legacy_i8mm: smmla $(count "$OUT/src_arm_legacy_i8mm.cc.o" smmla);" \
  "kquants_dot: sdot $(count "$OUT/src_arm_kquants_dot.cc.o" sdot); matmul_f: fmla $(count "$OUT/src_arm_matmul_f.cc.o" fmla);" \
  "kv_neon: fmla $(count "$OUT/src_arm_kv_neon.cc.o" fmla)"

# sdot / smmla / fmla among the instructions qemu translated (each ran at least once).
executed() {
  perl -ne 'if (/^0x[0-9a-f]+:\s+([0-9a-f]{8})\s/) { my $i = hex($1);
      $s++ if ($i & 0xffe0fc00) == 0x4e809400 || ($i & 0xffc0f400) == 0x4f80e000;  # sdot (vector, by element)
      $m++ if ($i & 0xffe0fc00) == 0x4e80a400;                                     # smmla
      $f++ if ($i & 0xbfa0fc00) == 0x0e20cc00 || ($i & 0xbf80f400) == 0x0f801000; }  # fmla .4s/.2s, by element
    END { printf "sdot %d smmla %d fmla %d\n", $s, $m, $f }' "$1"
}

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
