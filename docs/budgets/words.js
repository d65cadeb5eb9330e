const words = new Map();
for (let i = 0; i < 3000000; i++) { const w = "w" + ((i * 7919) % 5000); words.set(w, (words.get(w) || 0) + 1); }
const items = [...words.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
console.log(items.length, items[0].join(","));
