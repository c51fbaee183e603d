module example.com/steady

go 1.27
