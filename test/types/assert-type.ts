/** Compile-time assertions for the type tests in this folder (they are checked by tsc, never run). */

/** True when A and B are the same type (not merely assignable either way). */
export type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false

/** Compiles only when given `true`. */
export type Expect<T extends true> = T
