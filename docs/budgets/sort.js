let x = 12345; const a = [];
for (let i = 0; i < 2000000; i++) { x = (x * 48271) % 2147483647; a.push(x); }
a.sort((p, q) => p - q);
console.log(a[0], a[a.length >> 1], a[a.length - 1]);
