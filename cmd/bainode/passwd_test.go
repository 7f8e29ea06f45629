package main

import "github.com/go-crypt/crypt"

func checkPassword(pw, hash string) (bool, error) { return crypt.CheckPassword(pw, hash) }
