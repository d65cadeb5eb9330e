N = 6_000_000
is_p = bytearray([1]) * (N + 1)
is_p[0] = is_p[1] = 0
i = 2
while i * i <= N:
    if is_p[i]:
        for j in range(i * i, N + 1, i):
            is_p[j] = 0
    i += 1
print(sum(is_p))
