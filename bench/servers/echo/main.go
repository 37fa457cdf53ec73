// Command echo is the design this project replaces, for make bench: the same
// API on echo v4 with the 2020 middleware (AddTrailingSlash, Secure, CORS,
// BodyLimit 1M, Recover), answering on PORT. The 2020 design's Logger is left
// out, as the service's access log is off by default, and its region is REGION
// rather than K_SERVICE.
package main

import (
	"net/http"
	"os"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

func main() {
	region := os.Getenv("REGION")
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Pre(middleware.AddTrailingSlash())
	e.Use(middleware.Secure())
	e.Use(middleware.CORS())
	e.Use(middleware.BodyLimit("1M"))
	e.Use(middleware.Recover())
	e.GET("/", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"message": "Hello world!", "region": region})
	})
	e.GET("/health/", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
	if err := e.Start(":" + os.Getenv("PORT")); err != nil && err != http.ErrServerClosed {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
}
