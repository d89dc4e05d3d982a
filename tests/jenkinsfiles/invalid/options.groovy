// expect: 11:21 quiet period must be a whole number from 0 to 2147483647
// expect: 12:43 `throttle` count must be at least 1
// expect: 13:9 `../outside` is not a subdirectory of the workspace
// expect: 18:17 option `quietPeriod` applies to the whole pipeline
// expect: 19:17 option `checkoutToSubdirectory` has no effect in Sluice: the checkout is made once per run
// expect: 24:23 option `rateLimitBuilds` applies to the whole pipeline
// Options with values Jenkins would refuse, or that Sluice cannot honour as given.
pipeline {
    agent any
    options {
        quietPeriod('soon')
        rateLimitBuilds(throttle: [count: 0, durationName: 'hour'])
        checkoutToSubdirectory('../outside')
    }
    stages {
        stage('A') {
            options {
                quietPeriod(5)
                checkoutToSubdirectory('src')
            }
            steps { echo 'a' }
        }
        stage('B') {
            options { rateLimitBuilds(throttle: [count: 1, durationName: 'fortnight', burst: 2]) }
            steps { echo 'b' }
        }
    }
}
