module example.com/heapgrow

go 1.27
