'use strict';

/** Degrees Celsius for degrees Fahrenheit. */
function toCelsius(fahrenheit) {
  return (fahrenheit - 32) * 5 / 9;
}

/** Degrees Fahrenheit for degrees Celsius. */
function toFahrenheit(celsius) {
  return celsius * 5 / 9 + 32;
}

/** A reading for display, rounded to one decimal: "21.5°C". */
function formatReading(value, unit) {
  return `${(Math.round(value * 10) / 10).toFixed(1)}°${unit}`;
}

module.exports = { toCelsius, toFahrenheit, formatReading };
