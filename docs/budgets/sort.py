x = 12345
a = []
for i in range(600_000):
    x = (x * 48271) % 2147483647
    a.append(x)
a.sort()
print(a[0], a[len(a) // 2], a[-1])
