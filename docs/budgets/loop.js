const N = 30000000;
let s = 0;
for (let i = 0; i < N; i++) { s = (s + (i * i) % 1000000007) % 1000000007; }
console.log(s);
