module example.com/benchcmp

go 1.27
