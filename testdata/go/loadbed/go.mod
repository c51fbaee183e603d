module example.com/loadbed

go 1.27
