words = {}
for i in range(900_000):
    w = "w" + str((i * 7919) % 5000)
    words[w] = words.get(w, 0) + 1
items = sorted(words.items(), key=lambda kv: (-kv[1], kv[0]))
print(len(items), items[0])
