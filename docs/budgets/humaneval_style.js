// A HumanEval-X style JavaScript program: canonical solutions of a few tasks, then the
// task's tests (assertions), as the benchmark harness runs them. node runs it in ~0.12 s.

/* HumanEval/96: the prime numbers less than n. */
const countUpTo = (n) => {
  let t = [];
  for (let i = 2; i < n; i++) {
    let p = 1;
    for (let j = 2; j * j <= i; j++) {
      if (i % j == 0) { p = 0; break; }
    }
    if (p == 1) { t.push(i); }
  }
  return t;
};

/* HumanEval/39: the n-th number that is both a Fibonacci number and prime. */
const primeFib = (n) => {
  const isPrime = (p) => {
    if (p < 2) return false;
    for (let k = 2; k < Math.min(Math.floor(Math.sqrt(p)) + 1, p - 1); k++) {
      if (p % k == 0) return false;
    }
    return true;
  };
  let f = [0, 1];
  while (true) {
    f.push(f.at(-1) + f.at(-2));
    if (isPrime(f.at(-1))) n -= 1;
    if (n == 0) return f.at(-1);
  }
};

/* HumanEval/46: fib4, iteratively. */
const fib4 = (n) => {
  let results = [0, 0, 2, 0];
  if (n < 4) return results[n];
  for (let i = 4; i < n + 1; i++) {
    results.push(results.at(-1) + results.at(-2) + results.at(-3) + results.at(-4));
    results.shift();
  }
  return results.pop();
};

/* HumanEval/149: drop odd-length strings, sort by length then alphabetically. */
const sortedListSum = (lst) => {
  let p = [];
  for (let i = 0; i < lst.length; i++) {
    if (lst[i].length % 2 == 0) p.push(lst[i]);
  }
  return p.sort((a, b) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0));
};

const assert = {
  deepEqual(actual, expected) {
    if (JSON.stringify(actual) !== JSON.stringify(expected)) {
      throw new Error(`assertion failed: ${JSON.stringify(actual)} != ${JSON.stringify(expected)}`);
    }
  },
};
const testCountUpTo = () => {
  assert.deepEqual(countUpTo(5), [2, 3]);
  assert.deepEqual(countUpTo(22), [2, 3, 5, 7, 11, 13, 17, 19]);
  assert.deepEqual(countUpTo(1), []);
  assert.deepEqual(countUpTo(18), [2, 3, 5, 7, 11, 13, 17]);
  assert.deepEqual(countUpTo(101).length, 25);
  assert.deepEqual(countUpTo(150000).length, 13848);
};
const testPrimeFib = () => {
  assert.deepEqual(primeFib(1), 2);
  assert.deepEqual(primeFib(5), 89);
  assert.deepEqual(primeFib(8), 28657);
  assert.deepEqual(primeFib(9), 514229);
  assert.deepEqual(primeFib(10), 433494437);
};
const testFib4 = () => {
  assert.deepEqual(fib4(5), 4);
  assert.deepEqual(fib4(8), 28);
  assert.deepEqual(fib4(10), 104);
  assert.deepEqual(fib4(12), 386);
};
const testSortedListSum = () => {
  const words = [];
  for (let i = 0; i < 20000; i++) words.push("w".repeat(i % 7) + String(i * 7919 % 10007));
  assert.deepEqual(sortedListSum(["aa", "a", "aaa"]), ["aa"]);
  assert.deepEqual(sortedListSum(["ab", "a", "aaa", "cd"]), ["ab", "cd"]);
  assert.deepEqual(sortedListSum(words).length > 0, true);
};
testCountUpTo();
testPrimeFib();
testFib4();
testSortedListSum();
console.log("all tests passed");
