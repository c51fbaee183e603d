// Dumps what benchstat's statistics library computes for the cases in scipy.json.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/aclements/go-moremath/stats"
)

type ucase struct {
	X []float64 `json:"x"`
	Y []float64 `json:"y"`
}

func main() {
	var in struct {
		U []ucase `json:"u_test"`
	}
	b, _ := os.ReadFile(os.Args[1])
	if err := json.Unmarshal(b, &in); err != nil {
		panic(err)
	}
	type ci struct {
		N          int     `json:"n"`
		Lo         int     `json:"lo"`
		Hi         int     `json:"hi"`
		Confidence float64 `json:"confidence"`
	}
	type up struct {
		P     float64 `json:"p"`
		U     float64 `json:"u"`
		Error string  `json:"error,omitempty"`
	}
	out := struct {
		CI []ci `json:"median_ci_95"`
		U  []up `json:"u_test"`
	}{}
	for n := 1; n <= 200; n++ {
		r := stats.QuantileCI(n, 0.5, 0.95)
		out.CI = append(out.CI, ci{n, r.LoOrder, r.HiOrder, r.Confidence})
	}
	for _, c := range in.U {
		r, err := stats.MannWhitneyUTest(c.X, c.Y, stats.LocationDiffers)
		if err != nil {
			out.U = append(out.U, up{Error: err.Error()})
			continue
		}
		out.U = append(out.U, up{P: r.P, U: r.U})
	}
	e := json.NewEncoder(os.Stdout)
	e.SetIndent("", " ")
	e.Encode(out)
	fmt.Fprintln(os.Stderr, "ok")
}
