-- What calling a script costs before it does anything.
return {1}
