/**
 * Held-out evaluation text for stories260K: short TinyStories-like stories assembled deterministically from
 * templates (a fixed seed picks names, places and events). Written for this benchmark, so the model never saw
 * these exact stories; the vocabulary is the simple one TinyStories uses.
 */
const NAMES = ["Lily", "Tom", "Mia", "Ben", "Sue", "Max", "Anna", "Sam"];
const ANIMALS = ["dog", "cat", "bird", "bunny", "frog", "duck"];
const PLACES = ["park", "garden", "forest", "house", "beach", "farm"];
const THINGS = ["ball", "kite", "box", "hat", "toy car", "red balloon"];
const FEELINGS = ["happy", "sad", "scared", "excited", "tired", "proud"];
const ACTS = ["play", "run", "jump", "dance", "look for shells", "build a tower"];

function pick<T>(xs: readonly T[], r: () => number): T {
  return xs[r() % xs.length];
}

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
    return s >>> 0;
  };
}

function story(r: () => number): string {
  const name = pick(NAMES, r), friend = pick(NAMES.filter((n) => n !== name), r);
  const animal = pick(ANIMALS, r), place = pick(PLACES, r), thing = pick(THINGS, r);
  const he = ["Tom", "Ben", "Max", "Sam"].includes(name) ? "He" : "She";
  const lines = [
    `Once upon a time, there was a little ${["girl", "boy"][he === "He" ? 1 : 0]} named ${name}.`,
    `${he} liked to ${pick(ACTS, r)} in the ${place}.`,
    `One day, ${name} saw a ${animal} near a big tree.`,
    `The ${animal} was ${pick(FEELINGS, r)} because it lost its ${thing}.`,
    `${name} said, "Do not worry, I will help you find it."`,
    `${name} and ${friend} looked everywhere in the ${place}.`,
    `At last, they found the ${thing} under a ${pick(["rock", "bush", "bench", "leaf"], r)}.`,
    `The ${animal} was very ${pick(["happy", "glad", "thankful"], r)} and said thank you.`,
    `${name} felt ${pick(FEELINGS, r)} too, and they played together until the sun went down.`,
  ];
  return lines.join(" ");
}

/** `n` stories from `seed`. */
export function heldOutStories(n = 8, seed = 2024): string[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => story(r));
}
