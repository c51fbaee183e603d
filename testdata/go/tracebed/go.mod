module example.com/tracebed

go 1.22
