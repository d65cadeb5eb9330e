const N = 20000000;
const isP = new Uint8Array(N + 1).fill(1);
isP[0] = isP[1] = 0;
for (let i = 2; i * i <= N; i++) if (isP[i]) for (let j = i * i; j <= N; j += i) isP[j] = 0;
let c = 0; for (let i = 0; i <= N; i++) c += isP[i];
console.log(c);
