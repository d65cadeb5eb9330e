N = 9_000_000
s = 0
for i in range(N):
    s = (s + i * i) % 1_000_000_007
print(s)
