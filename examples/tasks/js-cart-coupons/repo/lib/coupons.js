'use strict';

/** Coupon codes and the percent they take off the whole cart. */
const COUPONS = Object.freeze({
  SAVE10: 10,
  WELCOME15: 15,
  HALFOFF: 50,
});

module.exports = { COUPONS };
